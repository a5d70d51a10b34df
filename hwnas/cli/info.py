"""``hwnas registry``: list registered components with their options."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from hwnas import registry
from hwnas.cli.common import add_parser
from hwnas.ui import emit, format_table


def _cmd_registry(args: argparse.Namespace) -> int:
    rows = []
    for e in registry.list(args.role, args.pattern):
        opts_cls = getattr(e.obj, "Options", None)
        opts = [f.name for f in dataclasses.fields(opts_cls)] if opts_cls and dataclasses.is_dataclass(opts_cls) else []
        rows.append({"role": e.role, "name": e.name, "module": e.module, "summary": e.summary, "options": opts})
    table = format_table([{**r, "options": ", ".join(r["options"])} for r in rows],
                         ["role", "name", "summary", "options"]) if rows else "no components match"
    emit(rows, as_json=args.json, table=table)
    return 0


def add_commands(sub: Any) -> None:
    r = add_parser(sub, "registry", help="list registered components (by role, name pattern)",
                   example="hwnas registry controller\nhwnas registry search_space 'nb*' --json")
    r.add_argument("role", nargs="?", choices=registry.ROLES, help="only this role")
    r.add_argument("pattern", nargs="?", help="glob or substring of names")
    r.set_defaults(func=_cmd_registry)
