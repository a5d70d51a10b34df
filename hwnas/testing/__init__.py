"""Contract suites and fakes for every component role, for our tests and plugin authors.

:mod:`hwnas.testing.suites` lists the cases, ``(role, name)`` for every registered
implementation (:func:`~hwnas.testing.suites.cases`), and checks one
(:func:`~hwnas.testing.suites.check`), raising
:class:`~hwnas.testing.suites.ContractError` (an ``AssertionError``) that names the
component and the rule it breaks. Each role's suite is the module
``hwnas.testing.<role>`` (``backend``, ``cost_model``, ``controller``, ...) with
``check(name, tmp_dir)``; the contract it asserts is stated in the docstring of the
role's base class. A component gives the suite a small instance of itself through its
role's classmethod ``example(tmp_dir)`` (options, a run config, or a generated input
file, depending on the role; see the base class).

Plugin authors run the suites over their own components in their test suite::

    import pytest
    from hwnas.testing import suites

    @pytest.mark.parametrize("role,name", suites.cases(only_plugins=True))
    def test_contract(role, name, tmp_path):
        suites.check(role, name, tmp_path)

:mod:`hwnas.testing.fakes` holds a toy search space with a known optimum (``toy``), a
deterministic fake backend (``fake``), a fake cost model writer and the small config
sections the built-ins' examples share; :mod:`hwnas.testing.data_files` and
:mod:`hwnas.testing.log_files` generate tiny inputs in the formats the built-in
datasets and ingest/power parsers read.
"""
from __future__ import annotations
