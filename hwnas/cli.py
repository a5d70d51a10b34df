"""The ``hwnas`` command: parse, call one library function, print. No logic here.

Each area adds its own subcommands through ``add_commands(subparsers)`` in its
``commands`` module, so the command line grows with the library without this file
knowing the details. A :class:`~hwnas.errors.HwnasError` becomes a one-line message
on stderr and exit status 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any, Callable, Sequence

from hwnas import __version__, registry
from hwnas.errors import HwnasError
from hwnas.ui import emit, format_table

#: Modules that contribute subcommands (each has ``add_commands(subparsers)``).
COMMAND_MODULES: tuple[str, ...] = (
    "hwnas.profilers.commands",
    "hwnas.profilers.ingest.commands",
    "hwnas.cost_models.commands",
    "hwnas.search.commands",
    "hwnas.search.final_commands",
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def add_parser(sub: Any, name: str, *, help: str, example: str, description: str = "") -> argparse.ArgumentParser:  # noqa: A002
    """A subcommand parser whose --help ends with an example (every command has one)."""
    epilog = "example:\n  " + "\n  ".join(example.strip().splitlines())
    p = sub.add_parser(name, help=help, description=description or help, epilog=epilog,
                       formatter_class=_Formatter)
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    return p


# -- registry ---------------------------------------------------------------------------
def _cmd_registry(args: argparse.Namespace) -> int:
    from hwnas.config import options_class

    entries = registry.list(args.role, args.pattern)
    rows = []
    for e in entries:
        opts_cls = getattr(e.obj, "Options", None)
        import dataclasses

        opts = [f.name for f in dataclasses.fields(opts_cls)] if opts_cls and dataclasses.is_dataclass(opts_cls) else []
        rows.append({"role": e.role, "name": e.name, "module": e.module, "summary": e.summary, "options": opts})
    _ = options_class
    emit(rows, as_json=args.json,
         table=format_table([{**r, "options": ", ".join(r["options"])} for r in rows],
                            ["role", "name", "summary", "options"]) if rows else "no components match")
    return 0


# -- store ------------------------------------------------------------------------------
def _cmd_store(args: argparse.Namespace) -> int:
    from hwnas.store import Store

    with Store(args.store, create=False) as st:
        if args.store_cmd == "ls":
            s = st.summary()
            lines = [f"{s['path']}: schema v{s['schema_version']}, {s['devices']} device(s), {s['primitives']} "
                     f"primitive(s), {s['networks']} network(s), {s['measurements']} measurement(s) "
                     f"({s['failed']} failed)"]
            if s["groups"]:
                lines.append(format_table(s["groups"], ["device", "fingerprint", "backend", "kind", "count", "failed"]))
            emit(s, as_json=args.json, table="\n".join(lines))
        elif args.store_cmd == "show":
            dev = st.find_device(args.device)["id"] if args.device else None
            rows = st.query(device_id=dev, backend=args.backend, kind=args.kind, target=args.target,
                            network=args.network, latest=not args.all)
            rows = rows[-args.limit:] if args.limit else rows
            slim = [{k: r[k] for k in ("id", "kind", "target", "device_name", "backend", "n", "median_ms", "std_ms",
                                       "energy_mj", "error")} for r in rows]
            emit(rows, as_json=args.json, table=format_table(slim) if slim else "no measurements match")
        elif args.store_cmd == "export":
            dev = st.find_device(args.device)["id"] if args.device else None
            out = args.out
            n = st.export_csv(out if out != "-" else sys.stdout, device_id=dev, backend=args.backend, kind=args.kind)
            if out != "-":
                emit({"rows": n, "path": out}, as_json=args.json, table=f"wrote {n} rows to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hwnas", formatter_class=_Formatter,
        description="Hardware-aware NAS: profile real costs, fit cost models, search under them.",
        epilog="example:\n  hwnas profile --space mbv2 --device cpu --backend onnxruntime --networks 100\n"
               "  hwnas fit-cost --store hwnas-store.sqlite --device cpu --backend onnxruntime --model all\n"
               "  hwnas search configs/search-nb201-table.yaml --objective latency --budget-ms 3")
    p.add_argument("--version", action="version", version=f"hwnas {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = add_parser(sub, "registry", help="list registered components (by role, name pattern)",
                   example="hwnas registry controller\nhwnas registry search_space 'nb*' --json")
    r.add_argument("role", nargs="?", choices=registry.ROLES, help="only this role")
    r.add_argument("pattern", nargs="?", help="glob or substring of names")
    r.set_defaults(func=_cmd_registry)

    s = sub.add_parser("store", help="inspect and export a cost store",
                       description="Inspect and export a cost store (SQLite).", formatter_class=_Formatter,
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
    show.add_argument("--limit", type=int, default=0, help="show only the last N rows")
    ex = add_parser(ssub, "export", help="write measurements as CSV",
                    example="hwnas store export --store hwnas-store.sqlite --out costs.csv --kind primitive")
    ex.add_argument("--out", default="-", help="CSV path, or - for stdout")
    ex.add_argument("--device")
    ex.add_argument("--backend")
    ex.add_argument("--kind", choices=("primitive", "network", "block"))
    for q in (ls, show, ex):
        q.add_argument("--store", default="hwnas-store.sqlite", help="cost store path (default: %(default)s)")
    s.set_defaults(func=_cmd_store)

    for mod in COMMAND_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and mod.startswith(exc.name):
                continue
            raise
        m.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except HwnasError as exc:
        print(f"hwnas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hwnas {args.command}: interrupted; what was measured is saved", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
