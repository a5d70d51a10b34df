"""Robustness of architectures: hardware fault models (bit flips, stuck-at bits in weights
and feature maps), adversarial attacks (FGSM, PGD) and robust training on the training core."""
from __future__ import annotations
