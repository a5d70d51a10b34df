"""Contract suites and fakes for every component role, for our tests and plugin authors.

Each role has a module here (``hwnas.testing.controller``, ``...cost_model``, ...) with
``check_<role>(name)`` functions that build a registered implementation and assert the
role's contract (see the role's ``base.py``). Plugin authors run them over their own
components in their test suite::

    import pytest
    from hwnas.testing import suites

    @pytest.mark.parametrize("role,name", suites.cases(only_plugins=False))
    def test_contract(role, name):
        suites.check(role, name)

:mod:`hwnas.testing.fakes` holds a toy search space with a known optimum (``toy``) and a
deterministic fake backend (``fake``).
"""
from __future__ import annotations
