"""Every (role, name) the contract suites cover, and one function that checks a case.

The roles come from :data:`hwnas.registry.ROLES` and the names from
:func:`hwnas.registry.list`, so a component registered by a plugin (entry point
``hwnas.plugins``) is a case as soon as hwnas can see it. Each role's suite is the
module ``hwnas.testing.<role>``, whose ``check(name, tmp_dir)`` asserts the contract
stated in the role's base class and raises :class:`ContractError` (an
``AssertionError``) naming the component and the rule it breaks.
"""
from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from hwnas import registry
from hwnas.testing import register_fakes
from hwnas.testing._common import ContractError

__all__ = ["ContractError", "cases", "check", "is_plugin", "suite_roles"]


def _suite(role: str) -> object | None:
    try:
        return importlib.import_module(f"hwnas.testing.{role}")
    except ModuleNotFoundError as exc:
        if exc.name == f"hwnas.testing.{role}":
            return None
        raise


def suite_roles() -> list[str]:
    """Registry roles that have a contract suite."""
    return [r for r in registry.ROLES if _suite(r) is not None]


def is_plugin(entry: registry.Entry) -> bool:
    """Whether a registry entry comes from outside hwnas (a plugin's module)."""
    return not (entry.module == "hwnas" or entry.module.startswith("hwnas."))


def cases(roles: list[str] | tuple[str, ...] | None = None, only_plugins: bool = False) -> list[tuple[str, str]]:
    """``(role, name)`` of every registered implementation of ``roles`` (default: all
    roles with a suite); ``only_plugins`` keeps the components plugins registered."""
    register_fakes()  # the suites run search components on the toy space
    wanted = list(roles) if roles is not None else suite_roles()
    out: list[tuple[str, str]] = []
    for role in wanted:
        if _suite(role) is None:
            raise ContractError(f"role {role!r} has no contract suite (hwnas.testing.{role})")
        out += [(role, e.name) for e in registry.list(role) if not only_plugins or is_plugin(e)]
    return out


def check(role: str, name: str, tmp_dir: str | Path | None = None) -> None:
    """Assert the contract of ``role`` on the registered component ``name``.

    Files the suite writes (example inputs, saved models, run directories) go under
    ``tmp_dir``, or a temporary folder removed afterwards.
    """
    register_fakes()
    suite = _suite(role)
    if suite is None:
        raise ContractError(f"role {role!r} has no contract suite (hwnas.testing.{role})")
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        suite.check(name, Path(tmp_dir))  # type: ignore[attr-defined]
        return
    with tempfile.TemporaryDirectory(prefix=f"hwnas-contract-{role}-") as tmp:
        suite.check(name, Path(tmp))  # type: ignore[attr-defined]
