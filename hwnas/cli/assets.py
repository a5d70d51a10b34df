"""``hwnas assets ls|show|path``: parse, call :mod:`hwnas.assets`, print."""
from __future__ import annotations

import argparse
from typing import Any

from hwnas.cli.common import Formatter, add_parser
from hwnas.ui import emit, format_table


def _cmd_assets(args: argparse.Namespace) -> int:
    from hwnas import assets

    if args.assets_cmd == "ls":
        rows = [a.summary() for a in assets.list_assets() if args.kind in (None, a.kind)]
        emit(rows, as_json=args.json, table=format_table(
            rows, ["name", "kind", "version", "space", "device", "headline", "size_kb"]) if rows else "no assets")
    elif args.assets_cmd == "show":
        meta = assets.describe(args.name)
        emit(meta, as_json=args.json, table=assets.render(meta))
    else:
        path = assets.resolve_path(args.name if assets.is_ref(args.name) else assets.PREFIX + args.name)
        emit({"name": args.name, "path": str(path)}, as_json=args.json, table=str(path))
    return 0


def add_commands(sub: Any) -> None:
    a = sub.add_parser("assets", help="shipped cost models and cost tables (asset:NAME)",
                       description="Shipped cost models and cost tables, usable as asset:NAME wherever a model "
                                   "folder, store or table path is taken.",
                       formatter_class=Formatter,
                       epilog="example:\n  hwnas assets ls\n  hwnas assets show nb201-base\n"
                              "  hwnas predict --model asset:nb201-pixel3 --space nb201 "
                              "--arch '|nor_conv_3x3~0|+|...|'")
    asub = a.add_subparsers(dest="assets_cmd", metavar="ACTION", required=True)
    ls = add_parser(asub, "ls", help="list the shipped assets", example="hwnas assets ls --kind cost_model --json")
    ls.add_argument("--kind", choices=("cost_model", "store", "table"), help="only this kind")
    show = add_parser(asub, "show", help="an asset's manifest: provenance, licence, held-out metrics (sha256 checked)",
                      example="hwnas assets show zcu102-dpu-blocks")
    show.add_argument("name", help="asset name (as in `hwnas assets ls`)")
    path = add_parser(asub, "path", help="local path of an asset (a store asset's private SQLite copy)",
                      example="hwnas store ls --store $(hwnas assets path mbv2-cpu-ort)")
    path.add_argument("name", help="asset name (as in `hwnas assets ls`)")
    a.set_defaults(func=_cmd_assets)
