"""MobileNetV2 / OFA-style block-wise space.

Fixed stem (3x3 conv, stride 2), a first inverted-residual block (e1, k3), five
searchable stages, each with depth {2,3,4} and per-block expansion {3,4,6} and kernel
{3,5,7}, then a fixed e6 block, a 1x1 conv, global pooling and a classifier. As in
OFA, a stage of depth d runs its first d blocks; choices of the blocks beyond the
depth are inactive.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import MAX_CHANNELS, MAX_CLASSES, MAX_RESOLUTION, Arch, Decision, SearchSpace, ascii_text
from hwnas.search.spaces.differentiable import (
    CostTerm,
    MixedLayer,
    ParamGroup,
    chain_cost_terms,
    check_weights,
    one_hot,
)

#: (base output channels, stride of the first block) of the five searchable stages.
STAGES: tuple[tuple[int, int], ...] = ((24, 2), (40, 2), (80, 2), (96, 1), (192, 2))


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10%."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def stage_decisions(o: Any, n_stages: int, max_depth: int) -> list[Decision]:
    """The elastic stages' decisions (OFA-style, shared by mbv2 and mbv3): per stage its
    depth, then expansion and kernel of every block up to ``max_depth``."""
    out = []
    for s in range(n_stages):
        out.append(Decision(f"s{s}.depth", tuple(o.depths)))
        for b in range(max_depth):
            out.append(Decision(f"s{s}.b{b}.e", tuple(o.expansions)))
            out.append(Decision(f"s{s}.b{b}.k", tuple(o.kernels)))
    return out


def stage_choices_at(arch: Arch, offset: int, o: Any, n_stages: int, max_depth: int) -> list[list[tuple[int, int]]]:
    """For each elastic stage (its decisions starting at ``offset``), the running blocks'
    (expansion, kernel) values."""
    n = 1 + 2 * max_depth
    out = []
    for s in range(n_stages):
        chunk = arch[offset + s * n:offset + (s + 1) * n]
        depth = o.depths[chunk[0]]
        out.append([(o.expansions[chunk[1 + 2 * b]], o.kernels[chunk[2 + 2 * b]]) for b in range(depth)])
    return out


def active_at(arch: Arch, offset: int, o: Any, n_stages: int, max_depth: int) -> list[int]:
    """Indices of the decisions that matter: each stage's depth and its running blocks' choices."""
    n = 1 + 2 * max_depth
    out = []
    for s in range(n_stages):
        start = offset + s * n
        out.append(start)
        out.extend(start + 1 + j for j in range(2 * o.depths[arch[start]]))
    return out


@register("search_space", "mbv2")
class MBV2Space(SearchSpace):
    """MobileNetV2/OFA block-wise space: 5 stages x depth {2,3,4} x expansion {3,4,6} x kernel {3,5,7}."""

    @dataclass(frozen=True)
    class Options:
        resolution: int = opt(224, min=8, max=MAX_RESOLUTION, help="input height and width in pixels")
        width: float = opt(1.0, gt=0, max=4, help="channel width multiplier")
        in_channels: int = opt(3, min=1, max=MAX_CHANNELS, help="input channels (3 for RGB)")
        num_classes: int = opt(1000, min=2, max=MAX_CLASSES, help="classifier outputs")
        depths: list[int] = opt([2, 3, 4], min=1, max=8, min_items=1, unique=True, help="depth choices per stage")
        expansions: list[int] = opt([3, 4, 6], min=1, max=8, min_items=1, unique=True, help="expansion choices per block")
        kernels: list[int] = opt([3, 5, 7], min=1, max=9, min_items=1, unique=True, odd=True, help="depthwise kernel choices (odd)")
        act: Literal["relu", "relu6", "hswish"] = opt("relu6", help="activation in every block")

    def __init__(self, options: "MBV2Space.Options | None" = None, **kw: object) -> None:
        self.options = options or MBV2Space.Options(**kw)  # type: ignore[arg-type]
        o = self.options
        self.max_depth = max(o.depths)
        self.c_stem = make_divisible(32 * o.width)
        self.c_first = make_divisible(16 * o.width)
        self.c_stages = [make_divisible(c * o.width) for c, _ in STAGES]
        self.c_last_block = make_divisible(320 * o.width)
        self.c_head = make_divisible(1280 * max(1.0, o.width))
        super().__init__()

    def build_decisions(self) -> Sequence[Decision]:
        return stage_decisions(self.options, len(STAGES), self.max_depth)

    # -- arch helpers -------------------------------------------------------------------
    def stage_choices(self, arch: Arch) -> list[list[tuple[int, int]]]:
        """For each stage, the active blocks' (expansion, kernel) values."""
        return stage_choices_at(self.validate(arch), 0, self.options, len(STAGES), self.max_depth)

    def active(self, arch: Arch) -> list[int]:
        return active_at(arch, 0, self.options, len(STAGES), self.max_depth)

    def to_str(self, arch: Arch) -> str:
        """E.g. ``d2:e3k5,e6k3|d3:...`` (inactive choices dropped)."""
        return "|".join(f"d{len(st)}:" + ",".join(f"e{e}k{k}" for e, k in st) for st in self.stage_choices(arch))

    def from_str(self, text: str) -> Arch:
        """Inverse of :meth:`to_str`, strictly: ``dN:`` stage prefixes, ``eXkY`` blocks, ASCII digits."""
        from hwnas.errors import ValidationError

        o = self.options
        stages = ascii_text("mbv2", text).strip().split("|")
        if len(stages) != len(STAGES):
            raise ValidationError(f"mbv2: expected {len(STAGES)} stages separated by '|', got {text!r}")
        out: list[int] = []
        try:
            for st in stages:
                m = re.fullmatch(r"d([0-9]+):([ek0-9,]*)", st)
                ek = [re.fullmatch(r"e([0-9]+)k([0-9]+)", b) for b in (m.group(2).split(",") if m else [])]
                if m is None or not all(ek) or int(m.group(1)) != len(ek):
                    raise ValueError(st)
                out.append(o.depths.index(len(ek)))
                for b in range(self.max_depth):
                    if b < len(ek):
                        out += [o.expansions.index(int(ek[b].group(1))), o.kernels.index(int(ek[b].group(2)))]
                    else:
                        out += [0, 0]
        except ValueError:
            raise ValidationError(f"mbv2: cannot parse architecture {text!r} (expected e.g. 'd2:e3k5,e6k3|...', "
                                  f"depths {list(o.depths)}, expansions {list(o.expansions)}, kernels "
                                  f"{list(o.kernels)})") from None
        return self.validate(out)

    # -- hardware half -------------------------------------------------------------------
    def _fixed_head(self, r: int) -> list[Primitive]:
        o = self.options
        r1 = (r + 1) // 2
        return [
            Primitive("conv", o.in_channels, self.c_stem, r, r, kernel=3, stride=2, act=o.act),
            Primitive("mbconv", self.c_stem, self.c_first, r1, r1, kernel=3, stride=1, expansion=1, act=o.act),
        ]

    def _fixed_tail(self, c_in: int, r: int) -> list[Primitive]:
        o = self.options
        return [
            Primitive("mbconv", c_in, self.c_last_block, r, r, kernel=3, stride=1, expansion=6, act=o.act),
            Primitive("conv", self.c_last_block, self.c_head, r, r, kernel=1, stride=1, act=o.act),
            Primitive("pool", self.c_head, self.c_head, r, r, kernel=r, extras=(("mode", "global"),)),
            Primitive("fc", self.c_head, o.num_classes, 1, 1),
        ]

    def _resolutions(self) -> list[int]:
        """Input resolution of each stage's first block."""
        r = (self.options.resolution + 1) // 2
        out = []
        for _, s in STAGES:
            out.append(r)
            r = (r + s - 1) // s
        return out + [r]

    def to_network(self, arch: Arch) -> NetworkSpec:
        o = self.options
        nodes = self._fixed_head(o.resolution)
        c = self.c_first
        res = self._resolutions()
        for s, blocks in enumerate(self.stage_choices(arch)):
            r = res[s]
            for b, (e, k) in enumerate(blocks):
                stride = STAGES[s][1] if b == 0 else 1
                nodes.append(Primitive("mbconv", c, self.c_stages[s], r, r, kernel=k, stride=stride,
                                       expansion=e, act=o.act))
                c = self.c_stages[s]
                r = (r + stride - 1) // stride
        nodes += self._fixed_tail(c, res[-1])
        return NetworkSpec.chain((o.in_channels, o.resolution, o.resolution), nodes, space="mbv2",
                                 arch=self.to_str(arch))

    def primitives(self) -> list[Primitive]:
        o = self.options
        res = self._resolutions()
        prims = self._fixed_head(o.resolution)
        c = self.c_first
        for s, (_, stride) in enumerate(STAGES):
            for e in o.expansions:
                for k in o.kernels:
                    prims.append(Primitive("mbconv", c, self.c_stages[s], res[s], res[s], kernel=k, stride=stride,
                                           expansion=e, act=o.act))
                    if max(o.depths) > 1:
                        r2 = res[s + 1]
                        prims.append(Primitive("mbconv", self.c_stages[s], self.c_stages[s], r2, r2, kernel=k,
                                               stride=1, expansion=e, act=o.act))
            c = self.c_stages[s]
        prims += self._fixed_tail(c, res[-1])
        uniq = {p.key: p for p in prims}
        return [uniq[k] for k in sorted(uniq)]

    # -- differentiable search: FBNet-style blocks with "skip" for the optional ones -------
    def combos(self) -> tuple[str, ...]:
        o = self.options
        return tuple(f"e{e}k{k}" for e in o.expansions for k in o.kernels)

    def _block_row(self, s: int, b: int) -> tuple[str, int]:
        n_fixed = min(self.options.depths)
        if b < n_fixed:
            return "blocks", s * n_fixed + b
        return "optional_blocks", s * (self.max_depth - n_fixed) + b - n_fixed

    def param_groups(self) -> list[ParamGroup]:
        """Per block, its (expansion, kernel) pair; blocks a stage may drop also choose "skip"."""
        n_fixed = min(self.options.depths)
        groups = [ParamGroup("blocks", len(STAGES) * n_fixed, self.combos())]
        if self.max_depth > n_fixed:
            groups.append(ParamGroup("optional_blocks", len(STAGES) * (self.max_depth - n_fixed),
                                     (*self.combos(), "skip")))
        return groups

    def derive(self, weights: Mapping[str, np.ndarray]) -> Arch:
        """Per stage: the mandatory blocks' best pairs, then as many optional blocks as
        do not prefer "skip" (rounded to an allowed depth, strongest kept), compacted to
        the front as the space runs its first d blocks."""
        o, n_fixed = self.options, min(self.options.depths)
        w = check_weights(self.param_groups(), weights)
        n_c = len(self.combos())
        out: list[int] = []
        for s in range(len(STAGES)):
            rows = [w[g][r] for g, r in (self._block_row(s, b) for b in range(self.max_depth))]
            keep = [float(1.0 - row[n_c]) for row in rows[n_fixed:]]
            wanted = n_fixed + sum(int(row[:n_c].max() > row[n_c]) for row in rows[n_fixed:])
            depth = min(o.depths, key=lambda d: (abs(d - wanted), d))
            kept = sorted(sorted(range(len(keep)), key=lambda i: -keep[i])[:depth - n_fixed])
            blocks = [int(rows[b][:n_c].argmax()) for b in range(n_fixed)] + \
                [int(rows[n_fixed + i][:n_c].argmax()) for i in kept]
            out.append(o.depths.index(depth))
            for b in range(self.max_depth):
                c = blocks[b] if b < len(blocks) else 0
                out += [c // len(o.kernels), c % len(o.kernels)]
        return self.validate(out)

    def arch_weights(self, arch: Arch) -> dict[str, np.ndarray]:
        picks: dict[str, list[int]] = {g.name: [0] * g.rows for g in self.param_groups()}
        names = self.combos()
        for s, blocks in enumerate(self.stage_choices(arch)):
            for b in range(self.max_depth):
                g, r = self._block_row(s, b)
                picks[g][r] = names.index(f"e{blocks[b][0]}k{blocks[b][1]}") if b < len(blocks) else len(names)
        return one_hot(self.param_groups(), picks)

    def mixed_chain(self) -> list[Primitive | MixedLayer]:
        """Fixed head, per block a mixed layer of its (expansion, kernel) candidates (plus an
        identity for optional blocks), fixed tail."""
        o = self.options
        res = self._resolutions()
        items: list[Primitive | MixedLayer] = list(self._fixed_head(o.resolution))
        c = self.c_first
        for s, (_, stride) in enumerate(STAGES):
            for b in range(self.max_depth):
                r, st = (res[s], stride) if b == 0 else (res[s + 1], 1)
                cands: list[Primitive | None] = [
                    Primitive("mbconv", c, self.c_stages[s], r, r, kernel=k, stride=st, expansion=e, act=o.act)
                    for e in o.expansions for k in o.kernels]
                g, row = self._block_row(s, b)
                items.append(MixedLayer(g, row, tuple(cands + ([None] if g == "optional_blocks" else []))))
                c = self.c_stages[s]
        return items + self._fixed_tail(c, res[-1])

    def cost_terms(self) -> list[CostTerm]:
        chain = self.mixed_chain()
        return chain_cost_terms([p for p in chain if isinstance(p, Primitive)],
                                [m for m in chain if isinstance(m, MixedLayer)])

