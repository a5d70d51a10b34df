"""The search engine: component roles joined by a rollout."""
from __future__ import annotations
