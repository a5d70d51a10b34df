"""``hwnas store ls|show|export``: inspect and export a cost store."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from hwnas.cli.common import Formatter, add_parser, add_store, local_path, non_negative
from hwnas.ui import emit, format_table

SHOW_COLUMNS = ("id", "kind", "target", "device_name", "backend", "n", "median_ms", "latency_ms", "std_ms", "flagged",
                "energy_mj", "error")


def _ls(st: Any, args: argparse.Namespace) -> None:
    s = st.summary()
    lines = [f"{s['path']}: schema v{s['schema_version']}, {s['devices']} device(s), {s['primitives']} "
             f"primitive(s), {s['networks']} network(s), {s['measurements']} measurement(s) ({s['failed']} failed, "
             f"{s['flagged']} flagged as disturbed)"]
    if s["groups"]:
        lines.append(format_table(s["groups"], ["device", "fingerprint", "backend", "kind", "count", "failed",
                                                "flagged"]))
    emit(s, as_json=args.json, table="\n".join(lines))


def _show(st: Any, args: argparse.Namespace) -> None:
    dev = st.find_device(args.device)["id"] if args.device else None
    rows = st.query(device_id=dev, backend=args.backend, kind=args.kind, target=args.target, network=args.network,
                    latest=not args.all)
    rows = rows[-args.limit:] if args.limit else rows
    slim = [{k: r[k] for k in SHOW_COLUMNS} for r in rows]
    emit(rows, as_json=args.json, table=format_table(slim) if slim else "no measurements match")


def _export(st: Any, args: argparse.Namespace) -> None:
    dev = st.find_device(args.device)["id"] if args.device else None
    n = st.export_csv(args.out if args.out != "-" else sys.stdout, device_id=dev, backend=args.backend, kind=args.kind)
    if args.out != "-":
        emit({"rows": n, "path": args.out}, as_json=args.json, table=f"wrote {n} rows to {args.out}")


def _cmd_store(args: argparse.Namespace) -> int:
    from hwnas.store import Store

    with Store(local_path(args.store, "store"), readonly=True) as st:
        {"ls": _ls, "show": _show, "export": _export}[args.store_cmd](st, args)
    return 0


def add_commands(sub: Any) -> None:
    s = sub.add_parser("store", help="inspect and export a cost store",
                       description="Inspect and export a cost store (SQLite).", formatter_class=Formatter,
                       epilog="example:\n  hwnas store ls --store hwnas-store.sqlite\n"
                              "  hwnas store export --store hwnas-store.sqlite --out costs.csv")
    ssub = s.add_subparsers(dest="store_cmd", metavar="ACTION", required=True)
    ls = add_parser(ssub, "ls", help="summary: devices, counts per backend and kind",
                    example="hwnas store ls --store hwnas-store.sqlite --json")
    show = add_parser(ssub, "show", help="measurement rows (newest per item by default)",
                      example="hwnas store show --kind primitive --backend onnxruntime --limit 20")
    show.add_argument("--device", help="device id, fingerprint or name")
    show.add_argument("--backend")
    show.add_argument("--kind", choices=("primitive", "network", "block"))
    show.add_argument("--target", help="primitive key or network hash")
    show.add_argument("--network", help="block rows of this network hash")
    show.add_argument("--all", action="store_true", help="every row, not just the newest per item")
    show.add_argument("--limit", type=non_negative, default=0, help="show only the last N rows (0 = all)")
    ex = add_parser(ssub, "export", help="write measurements as CSV",
                    example="hwnas store export --store hwnas-store.sqlite --out costs.csv --kind primitive")
    ex.add_argument("--out", default="-", help="CSV path, or - for stdout")
    ex.add_argument("--device")
    ex.add_argument("--backend")
    ex.add_argument("--kind", choices=("primitive", "network", "block"))
    for q in (ls, show, ex):
        add_store(q)
    s.set_defaults(func=_cmd_store)
