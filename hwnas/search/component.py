"""What every search-engine component shares: validated options and resumable state.

Each role's abstract base class (``controllers/base.py``, ``weights/base.py``, ...)
derives from :class:`Component`. A component is built from its frozen ``Options``
(hwnas.config) and the few objects it needs, never from global state; components
that learn hold state that survives a restart through :meth:`state_dict` /
:meth:`load_state_dict` (JSON-able values, or tensors, which checkpoints store apart).
"""
from __future__ import annotations

from abc import ABC
from pathlib import Path
from typing import Any, Mapping


class Component(ABC):
    """Base of every role: holds validated options; optional persistent state."""

    #: Frozen dataclass of the component's options (``None``: it takes none).
    Options: type | None = None
    #: Set by ``@register``.
    registry_name: str = "component"

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """A small run config that uses this component, for the contract suites.

        The mapping a run's YAML file would hold (``{"dataset": {"type": ..., options},
        "objective": {...}, ...}``), small enough to run in seconds on a CPU; whatever it
        needs on disk (image files, a fitted cost model) is written under ``tmp_dir``.
        Its section of this component's role names this component; absent sections get
        ``search_space: toy`` and ``weights_manager: plain``. Roles whose components need
        inputs the suite cannot guess (datasets, evaluators, ...) have no default.
        The built-ins' examples are rows of ``testing/examples.py`` (they use the
        test fakes, which production code never imports); this hook is a plugin's way.
        """
        raise NotImplementedError(f"{cls.__name__} gives no example run config; define the classmethod "
                                  "example(tmp_dir) returning one (see hwnas.search.component.Component.example)")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this component stopped."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; a stateless component refuses non-empty state."""
        if state:
            raise ValueError(f"{type(self).__name__} has no state to load")
