"""Contract suites and fakes for every component role, for our tests and plugin authors.

This package sits above every other one and nothing in production imports it (the import
contracts in ``make lint`` check that), so its fakes never show up in a user's ``hwnas``.

:mod:`hwnas.testing.suites` lists the cases, ``(role, name)`` for every registered
implementation (:func:`~hwnas.testing.suites.cases`), and checks one
(:func:`~hwnas.testing.suites.check`), raising
:class:`~hwnas.testing.suites.ContractError` (an ``AssertionError``) that names the
component and the rule it breaks. Each role's suite is the module
``hwnas.testing.<role>`` (``backend``, ``cost_model``, ``controller``, ...) with
``check(name, tmp_dir)``; the contract it asserts is stated in the docstring of the
role's base class. The suite builds a small instance of each component from its example:
the built-ins' examples are a table, :mod:`hwnas.testing.examples` (options, a run
config, or a generated input file, depending on the role); a plugin's component gives
its own through its role's classmethod ``example(tmp_dir)`` (see the base class).

Plugin authors run the suites over their own components in their test suite::

    import pytest
    from hwnas.testing import suites

    @pytest.mark.parametrize("role,name", suites.cases(only_plugins=True))
    def test_contract(role, name, tmp_path):
        suites.check(role, name, tmp_path)

:mod:`hwnas.testing.fakes` holds a toy search space with a known optimum (``toy``), a
deterministic fake backend (``fake``), a fake cost model writer and the small config
sections the examples share. They are registered only on request: :func:`register_fakes`
in-process (our tests/conftest.py calls it), and in other processes through the plugin
entry point :mod:`hwnas.testing.plugin` (``tests/fakes_plugin/`` on ``PYTHONPATH``: the
profiling worker, Ray tasks and a subprocess ``hwnas`` load it like any plugin). :mod:`hwnas.testing.data_files`
and :mod:`hwnas.testing.log_files` generate tiny inputs in the formats the built-in
datasets and ingest/power parsers read.
"""
from __future__ import annotations


def register_fakes() -> None:
    """Register the toy search space (``toy``) and the fake backend (``fake``); idempotent."""
    from hwnas.testing.fakes import register_all

    register_all()


__all__ = ["register_fakes"]
