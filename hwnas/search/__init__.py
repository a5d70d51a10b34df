"""The search engine: component roles joined by a rollout (DESIGN §7)."""
from __future__ import annotations
