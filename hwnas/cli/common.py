"""What every command module shares: the parser factory and argument types.

Every subcommand gets ``--json`` and an ``--help`` that ends with an example, so the
command line looks alike everywhere; argument types reject bad numbers at the edge.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, NoReturn

from hwnas import registry
from hwnas.store import DEFAULT_STORE


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``--help`` shows the usage), like
    every other hwnas error: scripts and people read the first line only."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text[:300]}\n")


def add_parser(sub: Any, name: str, *, help: str, example: str, description: str = "") -> argparse.ArgumentParser:  # noqa: A002
    """A subcommand parser whose --help ends with an example (every command has one)."""
    epilog = "example:\n  " + "\n  ".join(example.strip().splitlines())
    p = sub.add_parser(name, help=help, description=description or help, epilog=epilog, formatter_class=Formatter)
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    return p


def names(role: str) -> list[str]:
    """Registered names of a role (CLI choices and help texts come from the registry)."""
    return [e.name for e in registry.list(role)]


def positive(text: str) -> int:
    """An integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def non_negative(text: str) -> int:
    """An integer >= 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def finite(text: str) -> float:
    """A finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def local_path(text: str | Path | None, kind: str) -> Path | None:
    """What the user typed for a file option, as a local path: ``asset:NAME`` becomes the
    verified path of a shipped asset of ``kind`` (:func:`hwnas.assets.resolve_path`: the
    command line is an edge where references are resolved; the library takes paths)."""
    if text is None:
        return None
    from hwnas.assets import resolve_path

    return resolve_path(text, kind)


def add_store(p: argparse.ArgumentParser, help: str = "cost store path") -> None:  # noqa: A002
    """``--store PATH``, defaulting to the one default store path (:data:`hwnas.store.DEFAULT_STORE`)."""
    p.add_argument("--store", default=DEFAULT_STORE, help=f"{help} (default: %(default)s)")
def comma_list(text: str) -> str:
    """A comma-separated list of names with no empty item: ``''``, ``a,,b`` and ``a,`` are
    refused, because an empty list would silently mean the default."""
    if not text.strip() or not all(t.strip() for t in text.split(",")):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names with no empty item, got {text!r}")
    return text


def non_empty(text: str) -> str:
    """A string that is not empty or blank (a name, an architecture)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a non-empty value, got {text!r}")
    return text


def positive_finite(text: str) -> float:
    """A finite number > 0."""
    v = finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return v


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda|cuda:N`` (overrides the config's run.device)."""
    p.add_argument("--device", metavar="DEV",
                   help="auto (CUDA when present), cpu, cuda or cuda:N (default: the config's run.device, auto)")
