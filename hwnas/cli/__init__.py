"""The ``hwnas`` command: parse, call one library function, print. No logic here.

One module per command group (``hwnas.cli.profile``, ``.cost``, ``.search``, ...), each
with ``add_commands(subparsers)``. Choices that name components (backends, formats,
models) come from the registry, so a plugin's components are choosable like built-ins.
A :class:`~hwnas.errors.HwnasError` becomes a one-line message on stderr and exit
status 2; anything else is a bug and keeps its traceback.

Floor: the edge, the top of the house. Here user input is read, so ``asset:NAME`` in a
file option becomes a local path (:func:`hwnas.cli.common.local_path`) before any library
call; the library below takes paths.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Sequence

from hwnas import __version__
from hwnas.cli.common import Formatter, Parser, add_parser
from hwnas.errors import HwnasError

#: Command-group modules, in the order their commands appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "hwnas.cli.info", "hwnas.cli.store", "hwnas.cli.profile", "hwnas.cli.ingest", "hwnas.cli.cost",
    "hwnas.cli.search", "hwnas.cli.detect", "hwnas.cli.final", "hwnas.cli.specialize", "hwnas.cli.assets", "hwnas.cli.dashboard",
)

#: Longest error line printed (the message is cut, never the exit status).
MAX_ERROR_CHARS = 500

__all__ = ["add_parser", "build_parser", "main"]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command``, only the command modules up to the one that
    defines it. Why: listing every role's components for every command's help imports
    all of them (torch among them, ~1.5 s), and ``hwnas profile`` needs none of it."""
    p = Parser(
        prog="hwnas", formatter_class=Formatter,
        description="Hardware-aware NAS: profile real costs, fit cost models, search under them.",
        epilog="example:\n  hwnas profile --space mbv2 --device cpu --backend onnxruntime --networks 100\n"
               "  hwnas fit-cost --store hwnas-store.sqlite --device cpu --backend onnxruntime --model all\n"
               "  hwnas search configs/search-nb201-table.yaml --objective latency --budget-ms 3")
    p.add_argument("--version", action="version", version=f"hwnas {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).add_commands(sub)
        if command is not None and command in sub.choices:
            break
    return p


def _command(argv: Sequence[str]) -> str | None:
    """The command word of a command line (the top level's options take no values)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv))
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
        text = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"hwnas {args.command}: error: {text[:MAX_ERROR_CHARS]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hwnas {args.command}: interrupted; what was measured is saved", file=sys.stderr)
        return 130
