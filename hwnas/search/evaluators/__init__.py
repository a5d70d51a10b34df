"""Evaluators: perfs for rollouts, possibly training shared weights (DESIGN §7)."""
from __future__ import annotations

import importlib
import logging

from hwnas.search.evaluators import predictor, tune  # noqa: F401  (register)

log = logging.getLogger(__name__)

# --- shared-weights evaluators (owned by the weight-sharing engineer): add names here --
SHARED_WEIGHT_MODULES: tuple[str, ...] = ("mepa",)
# --------------------------------------------------------------------------------------

for _name in SHARED_WEIGHT_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # not written yet in a partial checkout
        if _exc.name != f"{__name__}.{_name}":
            raise
        log.debug("evaluator module %s not present", _name)
