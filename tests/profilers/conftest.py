"""Shared helpers for profiler tests: tiny spaces and a fast timing protocol."""
from __future__ import annotations

import pytest

from hwnas import registry
from hwnas.profilers.timing import TimingProtocol

TINY_MBV2 = {"resolution": 32, "width": 0.25}
TINY_NB201 = {"channels": 4, "cells_per_stage": 1, "resolution": 16}


@pytest.fixture
def fast_protocol() -> TimingProtocol:
    return TimingProtocol(warmup=1, min_repeats=3, max_repeats=6, min_time_ms=0.5, time_budget_s=0.3, sessions=1)


@pytest.fixture
def tiny_nb201():
    return registry.build("search_space", "nb201", **TINY_NB201)

