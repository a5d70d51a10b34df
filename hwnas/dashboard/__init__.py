"""``hwnas dashboard``: a read-only local web view of search runs, cost models and a cost store.

Why: every figure of a run used to be a PNG or a table written at its end; a search that
runs for hours should be watched while it runs, and runs and devices compared side by
side. Pages: runs (status, live progress, rollouts table, Pareto front with each point's
architecture on hover), per-device fronts, a comparison of runs, cost models (predicted
vs measured, per-kernel breakdown) and the store (devices, coverage, flagged
measurements). Flask serves them on 127.0.0.1 by default, plotly.js draws the plots from
the copy inside the plotly package (no internet). Optional: ``pip install 'hwnas[dashboard]'``.

Floor: the edge (it reads user folders and opens the store, like the command line).
"""
from __future__ import annotations

from hwnas.dashboard.server import check_port, serve

__all__ = ["check_port", "serve"]
