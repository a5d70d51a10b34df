"""The search-space interface.

A space is a list of categorical *decisions*; an architecture (:data:`Arch`) is a
tuple with one choice index per decision. That one representation serves every
controller (random, evolution, RL all see a vector of categorical choices) while the
space alone knows what the choices mean (:meth:`SearchSpace.to_network`) and how to
write them for people (:meth:`SearchSpace.to_jsonable`).

Contract (checked for every registered space by the suite in ``testing/search_space.py``):
``cls(options)`` builds it; :meth:`SearchSpace.sample` gives valid archs and
:meth:`SearchSpace.validate` refuses invalid ones with a ValidationError;
:meth:`SearchSpace.to_str` / :meth:`SearchSpace.from_str` and
:meth:`SearchSpace.to_jsonable` / :meth:`SearchSpace.from_jsonable` round-trip up to
:meth:`SearchSpace.canonical` (the jsonable form also through JSON text);
:meth:`SearchSpace.to_network` gives a NetworkSpec every node of which is among
:meth:`SearchSpace.primitives` (so a profiled table covers every network); equal
:meth:`SearchSpace.canonical` forms give equal networks; :meth:`SearchSpace.mutate` gives
a valid, different arch and :meth:`SearchSpace.crossover` a valid one. :meth:`SearchSpace.example`
gives the options the suite builds it with (default: the space's defaults).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.errors import ValidationError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.search.spaces.differentiable import CostTerm, ParamGroup, check_weights, masked_argmax, one_hot

Arch = tuple[int, ...]

#: Documented domains of the options every space shares (stated in the error when
#: exceeded): past these a network is a typo, not a design, and would take hours to
#: build or overflow a profiler's memory.
MAX_RESOLUTION = 2048
MAX_CHANNELS = 4096
MAX_CLASSES = 100_000


def ascii_text(space: str, text: Any) -> str:
    """``text`` if it is an ASCII string, else a one-line ValidationError naming the first
    offending character: architecture strings are ASCII, so that ``int()`` never reads
    Arabic-Indic or full-width digits and two spellings never name one architecture."""
    if not isinstance(text, str):
        raise ValidationError(f"{space}: expected an architecture string, got {type(text).__name__}")
    if not text.isascii():
        i = next(i for i, ch in enumerate(text) if not ch.isascii())
        raise ValidationError(f"{space}: architecture strings are ASCII; got {text[i]!r} (U+{ord(text[i]):04X}) "
                              f"at position {i}")
    return text


def ascii_int(text: str) -> int:
    """A non-negative integer written with ASCII digits only (no sign, blank or ``_``);
    ValueError otherwise, which each space's parser turns into its own message."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"not an ASCII integer: {text!r}")
    return int(text)


@dataclass(frozen=True)
class Decision:
    """One categorical choice: a name and its options (values shown to people)."""

    name: str
    choices: tuple[Any, ...]

    @property
    def size(self) -> int:
        return len(self.choices)


class SearchSpace(ABC):
    """Base class. Subclasses define ``decisions``, ``to_network`` and ``primitives``; the rest is generic."""

    #: Registry name, set by ``@register``.
    registry_name: str = "space"

    def __init__(self) -> None:
        self._decisions: tuple[Decision, ...] = tuple(self.build_decisions())

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """A run config holding this space with small options, for the contract suites
        (the same hook as ``Component.example``). Default: the space's defaults."""
        return {"search_space": {"type": cls.registry_name}}

    # -- to implement -----------------------------------------------------------------
    @abstractmethod
    def build_decisions(self) -> Sequence[Decision]:
        """The categorical decisions, in a fixed order (an arch indexes them)."""

    @abstractmethod
    def to_network(self, arch: Arch) -> NetworkSpec:
        """The network of ``arch`` as a graph of primitives."""

    @abstractmethod
    def primitives(self) -> list[Primitive]:
        """Every unique primitive the space can produce, deduplicated by key, sorted."""

    def cell_graph(self, arch: Arch) -> NetworkSpec:
        """The graph a learned predictor reads for ``arch`` (GATES-style encoders).

        By default the whole network, which works for any space; spaces whose network
        repeats one searched cell return that cell alone (nodes are the cell's ops, edges
        its data flow), which says the same thing in a tenth of the nodes.
        """
        return self.to_network(arch)

    # -- generic ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.registry_name

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(d.size for d in self._decisions)

    def size(self) -> float:
        """Number of distinct architectures (as decision vectors)."""
        return float(np.prod([float(s) for s in self.sizes]))

    def validate(self, arch: Sequence[int]) -> Arch:
        """``arch`` as a tuple of in-range choice indices, or a one-line ValidationError."""
        if isinstance(arch, (str, bytes)) or not isinstance(arch, Sequence):
            raise ValidationError(f"{self.name}: an architecture is a list of choice indices, got {str(arch)[:60]}")
        if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in arch):
            raise ValidationError(f"{self.name}: choice indices must be integers, got {str(list(arch))[:60]}")
        arch = tuple(int(a) for a in arch)
        if len(arch) != len(self._decisions):
            raise ValidationError(f"{self.name}: an architecture has {len(self._decisions)} choices, got {len(arch)}")
        for a, d in zip(arch, self._decisions):
            if not 0 <= a < d.size:
                raise ValidationError(f"{self.name}: decision {d.name} has {d.size} options, got index {a}")
        return arch

    def sample(self, rng: np.random.Generator) -> Arch:
        return tuple(int(rng.integers(d.size)) for d in self._decisions)

    def active(self, arch: Arch) -> list[int]:
        """Indices of decisions that change the network for this arch (all by default)."""
        return list(range(len(self._decisions)))

    def mutate(self, arch: Arch, rng: np.random.Generator, n: int = 1) -> Arch:
        """Change ``n`` active decisions to a different option (so the result differs)."""
        out = list(arch)
        candidates = [i for i in self.active(arch) if self._decisions[i].size > 1]
        for i in rng.choice(candidates, size=min(n, len(candidates)), replace=False):
            size = self._decisions[i].size
            out[i] = int((out[i] + rng.integers(1, size)) % size)
        return tuple(out)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover: each decision from one parent at random."""
        mask = rng.random(len(a)) < 0.5
        return tuple(int(x if m else y) for x, y, m in zip(a, b, mask))

    def encode(self, arch: Arch) -> np.ndarray:
        """One-hot encoding, concatenated over decisions (for predictors and RL)."""
        out = np.zeros(sum(self.sizes), dtype=np.float32)
        off = 0
        for a, d in zip(arch, self._decisions):
            out[off + a] = 1.0
            off += d.size
        return out

    def canonical(self, arch: Arch) -> Arch:
        """Inactive decisions reset to 0, so equal networks have equal archs."""
        act = set(self.active(arch))
        return tuple(a if i in act else 0 for i, a in enumerate(arch))

    def to_jsonable(self, arch: Arch) -> Any:
        """A readable form for files (YAML/JSON/CSV): decision name -> chosen value."""
        return {d.name: d.choices[a] for d, a in zip(self._decisions, arch)}

    def from_jsonable(self, obj: Any) -> Arch:
        """Inverse of :meth:`to_jsonable`; also accepts a list of choice indices."""
        if isinstance(obj, (list, tuple)):
            return self.validate(obj)
        if not isinstance(obj, dict):
            raise ValidationError(f"{self.name}: expected a mapping of decisions or a list of indices, got {obj!r}")
        out = []
        for d in self._decisions:
            if d.name not in obj:
                raise ValidationError(f"{self.name}: architecture misses decision {d.name!r}")
            v = obj[d.name]
            if v not in d.choices:
                raise ValidationError(f"{self.name}: {d.name} must be one of {list(d.choices)}, got {v!r}")
            out.append(d.choices.index(v))
        extra = set(obj) - {d.name for d in self._decisions}
        if extra:
            raise ValidationError(f"{self.name}: unknown decision(s) {', '.join(sorted(extra))}")
        return tuple(out)

    def to_str(self, arch: Arch) -> str:
        """Compact one-line form; spaces with a standard string form override it."""
        return "-".join(str(a) for a in arch)

    def from_str(self, text: str) -> Arch:
        text = ascii_text(self.name, text)
        try:
            return self.validate([ascii_int(t) for t in text.strip().split("-")])
        except ValueError:
            raise ValidationError(f"{self.name}: cannot parse architecture {text!r}") from None

    # -- differentiable search (see spaces/differentiable.py) ---------------------------
    def param_groups(self) -> list[ParamGroup]:
        """Architecture-parameter groups; by default one single-row group per decision."""
        return [ParamGroup(d.name, 1, tuple(str(c) for c in d.choices)) for d in self._decisions]

    def derive(self, weights: Mapping[str, np.ndarray]) -> Arch:
        """The discrete architecture a weight distribution stands for (default: argmax of
        each decision's group)."""
        groups = self.param_groups()
        w = check_weights(groups, weights)
        return self.validate([int(masked_argmax(w[g.name], g.mask_array())[0]) for g in groups])

    def arch_weights(self, arch: Arch) -> dict[str, np.ndarray]:
        """One-hot group weights of a discrete architecture (``derive`` gives it back)."""
        arch = self.validate(arch)
        return one_hot(self.param_groups(), {d.name: [a] for d, a in zip(self._decisions, arch)})

    def cost_terms(self) -> list[CostTerm]:
        """Per-choice primitives for expected-cost objectives (spaces that support them override)."""
        raise ValidationError(f"{self.name}: the space defines no per-choice costs, which a differentiable "
                              "hardware objective needs")

    def options_dict(self) -> dict[str, Any]:
        opts = getattr(self, "options", None)
        from hwnas.config import options_to_dict

        return options_to_dict(opts)
