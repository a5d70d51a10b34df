"""A tiny hwnas plugin: one component of each of several roles.

hwnas imports this module through its ``hwnas.plugins`` entry point (see the
``hwnas_example_plugin-0.1.dist-info`` folder beside it, which stands in for
``pip install``); importing the submodules registers their components. Each component
implements its role's ``example(tmp_dir)`` hook, so ``hwnas.testing.suites`` can check
it like a built-in.
"""
from __future__ import annotations

from hwnas_example_plugin import backend, controller, cost_model, formats  # noqa: F401  (register)

__all__ = ["backend", "controller", "cost_model", "formats"]
