"""Every registered implementation of every role passes its role's contract suite.

The cases come from the registry at collection time, so a new component is checked
as soon as it is registered; a new role must come with a suite (last test).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from hwnas import registry
from hwnas.testing import suites

#: Cases that take more than a few seconds: TVM compiles every target it measures.
MARKS = {("backend", "tvm"): (pytest.mark.slow, pytest.mark.tvm)}


def params() -> list:
    return [pytest.param(role, name, marks=MARKS.get((role, name), ()), id=f"{role}:{name}")
            for role, name in suites.cases()]


@pytest.mark.parametrize("role,name", params())
def test_contract(role: str, name: str, tmp_path: Path) -> None:
    suites.check(role, name, tmp_path)


def test_every_role_has_a_suite_and_every_built_in_is_a_case() -> None:
    assert suites.suite_roles() == list(registry.ROLES)
    cases = suites.cases()
    for role in registry.ROLES:
        assert {n for r, n in cases if r == role} == {e.name for e in registry.list(role)}
    assert suites.cases(only_plugins=True) == []  # no plugin on this process's path
