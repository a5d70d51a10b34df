"""Architecture files: what ``hwnas derive`` writes and ``train`` / ``test`` read.

A derived architecture travels between commands and people as YAML: the space's
string form (which people read and edit), the choice indices, or a mapping of decision
to value, optionally with the space's name and options. Every structural problem is a
one-line error naming the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hwnas.errors import ConfigError
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.yamlio import read_yaml

__all__ = ["ArchFile", "read_arch_file"]


@dataclass(frozen=True)
class ArchFile:
    """An architecture file as ``hwnas derive`` writes it: ``space`` (registry name),
    ``arch`` (the space's string form, a list of choice indices, or a mapping of
    decision -> value) and optionally ``space_options``. A file with ``archs`` (a
    ranked list of such entries) stands for its first entry."""

    path: Path
    space: str | None
    arch: Any
    space_options: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, space: SearchSpace) -> Arch:
        """The arch as choice indices of ``space``; an unknown op is named in one line."""
        a = self.arch
        try:
            if isinstance(a, str):
                _check_ops(space, a, self.path)
                return space.from_str(a)
            if isinstance(a, Mapping):
                return space.from_jsonable(dict(a))
            if isinstance(a, (list, tuple)):
                return space.validate(a)
        except ConfigError:
            raise
        except ValueError as exc:  # ValidationError included
            raise ConfigError(f"{self.path}: {exc}") from None
        raise ConfigError(f"{self.path}: arch must be a string, a list of indices or a mapping, got {a!r}")


def _check_ops(space: SearchSpace, text: str, path: Path) -> None:
    """Name the first op the space does not know (spaces' parsers only say 'cannot parse')."""
    if space.name == "nb201":
        from hwnas.search.spaces.nb201 import OPS

        known = list(OPS)
        ops = re.findall(r"([^|+~\s]+)~\d+", text)
    elif space.name == "mbv2":
        so = space.options  # type: ignore[attr-defined]
        known = [f"e{e}k{k}" for e in so.expansions for k in so.kernels]
        ops = [b.strip() for st in text.split("|") for b in st.split(":", 1)[-1].split(",") if b.strip()]
    elif space.name == "fbnet":
        from hwnas.search.spaces.fbnet import OPS as FB_OPS

        known, ops = list(FB_OPS), text.split()
    else:
        return
    for op in ops:
        if op not in known:
            raise ConfigError(f"{path}: unknown op {op!r} for space {space.name} (known: {', '.join(known)})")


def read_arch_file(path: str | Path, rank: int = 0) -> ArchFile:
    """Parse an architecture YAML (safe_load); structure errors name the file.

    Accepts ``hwnas derive``'s ``best.yaml`` (a ranked list of records with ``arch_str``
    and ``arch``; ``rank`` picks one, 0 = best), a single record, a mapping with
    ``space`` and ``arch``, or a bare string / list of indices. ``arch_str`` wins over
    ``arch`` when both are present: it is the form people read and edit.
    """
    p = Path(path)
    data = read_yaml(p, "architecture file")
    if isinstance(data, Mapping) and "arch" not in data and "arch_str" not in data \
            and isinstance(data.get("archs"), list):
        data = [{**{k: v for k, v in data.items() if k != "archs"}, **(e if isinstance(e, Mapping) else {"arch": e})}
                for e in data["archs"]]
    if isinstance(data, list) and data and all(isinstance(e, Mapping) for e in data):
        if not 0 <= rank < len(data):
            raise ConfigError(f"{p}: holds {len(data)} architecture(s); rank {rank} is out of range")
        data = data[rank]
    if isinstance(data, (str, list)):
        data = {"arch": data}
    if not isinstance(data, Mapping) or ("arch" not in data and "arch_str" not in data):
        raise ConfigError(f"{p}: expected 'arch' (or 'arch_str') as written by hwnas derive")
    arch = data["arch_str"] if isinstance(data.get("arch_str"), str) else data["arch"]
    space = data.get("space")
    if isinstance(space, Mapping):  # {type: nb201, ...options}
        return ArchFile(p, space.get("type"), arch, {k: v for k, v in space.items() if k != "type"})
    if space is not None and not isinstance(space, str):
        raise ConfigError(f"{p}: space must be a name, got {space!r}")
    return ArchFile(p, space, arch, dict(data.get("space_options") or {}))
