"""``hwnas dashboard``: parse, check, serve (the app is :mod:`hwnas.dashboard`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hwnas.cli.common import add_parser, local_path, non_negative


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from hwnas.dashboard.server import make_server

    store = local_path(args.store, "store") if args.store else None
    srv = make_server(Path(args.runs), store, args.host, args.port)
    url = f"http://{args.host}:{srv.server_port}/"
    print(f"hwnas dashboard: {args.runs}" + (f" and {args.store}" if store else "") +
          f" on {url} (read-only; Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
    return 0


def add_commands(sub: Any) -> None:
    d = add_parser(sub, "dashboard", help="read-only web view of runs, cost models and a store (live progress)",
                   example="hwnas dashboard\nhwnas dashboard --runs runs --store hwnas-store.sqlite --port 8060",
                   description="Serve a local, read-only web dashboard: runs (status, live progress, rollouts, "
                               "Pareto front with architectures on hover), per-device fronts, a comparison of runs, "
                               "cost models found under --runs (predicted vs measured, per-kernel breakdown; "
                               "needs --store) and the store (devices, coverage, flagged measurements). Needs "
                               "pip install 'hwnas[dashboard]'.")
    d.add_argument("--runs", default="runs", help="folder holding search runs and fit-cost model folders "
                                                  "(default: %(default)s)")
    d.add_argument("--store", help="cost store to show (or asset:NAME); opened read-only")
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    d.add_argument("--port", type=non_negative, default=8050, help="port (default: %(default)s; 0 = any free one)")
    d.set_defaults(func=_cmd_dashboard)
