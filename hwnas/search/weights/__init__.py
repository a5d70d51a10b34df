"""Weights managers: fill a rollout with weights (DESIGN §7)."""
from __future__ import annotations

import importlib
import logging

from hwnas.search.weights import plain  # noqa: F401  (register)

log = logging.getLogger(__name__)

# --- weight-sharing modules (owned by the supernet engineer): add names here ---------
SUPERNET_MODULES: tuple[str, ...] = ("supernet_mbv2", "supernet_nb201")
# --------------------------------------------------------------------------------------

for _name in SUPERNET_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # not written yet in a partial checkout
        if _exc.name != f"{__name__}.{_name}":
            raise
        log.debug("weights module %s not present", _name)
