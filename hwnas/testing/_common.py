"""What every contract suite shares: failures, the example hook, small assertions.

Why a dedicated error: the suites run inside plugin authors' test runners and under
``python -O``, so they cannot rely on bare ``assert`` (stripped, and not rewritten by
pytest in library modules). :class:`ContractError` subclasses ``AssertionError`` so a
test runner reports a broken contract as a failure, not as an error in the suite.
"""
from __future__ import annotations

import json
import math
import unittest
from pathlib import Path
from typing import Any, Iterable

from hwnas import registry
from hwnas.errors import DependencyError


class ContractError(AssertionError):
    """A registered component breaks its role's contract (the message says which rule)."""


def expect(cond: Any, role: str, name: str, rule: str) -> None:
    """Fail with ``ROLE NAME: RULE`` unless ``cond`` holds."""
    if not cond:
        raise ContractError(f"{role} {name!r}: {rule}")


def component(role: str, name: str) -> Any:
    """The registered object, or a ContractError when the name is not registered."""
    try:
        return registry.get(role, name)
    except Exception as exc:  # RegistryError, or a plugin module failing on import
        raise ContractError(f"{role} {name!r}: not registered ({exc})") from None


def example(role: str, name: str, cls: Any, tmp_dir: Path) -> Any:
    """The example of ``name``: its row in :mod:`hwnas.testing.examples` (every built-in),
    else the class's ``example(tmp_dir)`` hook (a plugin's component); a missing one fails
    with what to implement and where."""
    from hwnas.testing.examples import lookup

    row = lookup(role, name)
    if row is not None:
        return row(Path(tmp_dir))
    hook = getattr(cls, "example", None)
    where = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)}"
    if not callable(hook):
        raise ContractError(f"{role} {name!r} ({where}) has no example(tmp_dir) hook; the contract suite needs it "
                            f"to build a small instance (see the docstring of the {role} base class)")
    try:
        return hook(Path(tmp_dir))
    except NotImplementedError as exc:
        raise ContractError(f"{role} {name!r} ({where}) does not implement example(tmp_dir): {exc}") from None


def skip_if_missing(exc: DependencyError, role: str, name: str) -> None:
    """A missing optional dependency skips the case (pytest honours unittest.SkipTest)."""
    raise unittest.SkipTest(f"{role} {name!r}: {exc}")


def finite(values: Iterable[Any]) -> bool:
    """Every value is a real, finite number (bools and strings are not numbers here)."""
    for v in values:
        if isinstance(v, (bool, str, bytes)):
            return False
        try:
            f = float(v)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(f):
            return False
    return True


def jsonable(obj: Any) -> bool:
    """Whether ``obj`` survives ``json.dumps`` unchanged in type (no NaN, str keys)."""
    try:
        json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
