"""Importing this module registers the test fakes (``toy`` space, ``fake`` backend).

It is the ``hwnas.plugins`` entry point of ``tests/fakes_plugin/`` (a ``.dist-info`` folder a
test harness puts on ``PYTHONPATH``): the profiling worker, Ray tasks and ``hwnas`` run in a
subprocess then load the fakes the way they load any plugin, and production code never
names them. In-process, call :func:`hwnas.testing.register_fakes` instead.
"""
from __future__ import annotations

from hwnas.testing import register_fakes

register_fakes()
