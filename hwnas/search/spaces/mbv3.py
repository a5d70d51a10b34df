"""Once-for-All's MobileNetV3 space (``mbv3``).

The layout is OFA-MobileNetV3's (Cai et al., ICLR 2020; ``OFAMobileNetV3`` in
mit-han-lab/once-for-all): a 3x3 stride-2 stem with h-swish (16 channels), a first
depthwise-separable block (16 -> 16, k3, ReLU, no SE), five elastic stages of widths
24, 40, 80, 112, 160 with first-block strides 2, 2, 2, 1, 2, ReLU in the first two and
h-swish in the last three, squeeze-and-excitation in stages 2, 4 and 5 (40, 112, 160);
then the final expand layer (1x1 conv to 960, BN, h-swish), global pooling, the feature
mix layer (960 -> 1280, h-swish, no BN; a ``fc`` primitive here) and the classifier.

Each stage has depth {2,3,4} (its first d blocks run), each block expansion {3,4,6} and
kernel {3,5,7}; the input resolution is a decision too (``resolutions``). ``width``
scales every layer's channels, rounded to multiples of 8 as MobileNetV3 does (OFA ships
0.8, 1.0 and 1.2 here, but any positive multiplier builds).

Elastic width (``stage_widths``, off by default): each stage also chooses a multiplier of
its output channels (``s<i>.w``, decisions after all the others, so the default space's
decisions are unchanged); a block's hidden channels follow its active input channels times
its expansion, as in MobileNetV3. The supernet keeps the stage's most important channels
(sorted before its width phase), so a narrow stage is a slice of the wide one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from hwnas.config import opt
from hwnas.errors import ValidationError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import MAX_CHANNELS, MAX_CLASSES, MAX_RESOLUTION, Arch, Decision, SearchSpace, ascii_text
from hwnas.search.spaces.mbv2 import active_at, make_divisible, stage_choices_at, stage_decisions

#: (base output channels, stride of the first block, activation, squeeze-excite) of the
#: five elastic stages, as in OFA-MobileNetV3.
STAGES: tuple[tuple[int, int, str, bool], ...] = (
    (24, 2, "relu", False), (40, 2, "relu", True), (80, 2, "hswish", False),
    (112, 1, "hswish", True), (160, 2, "hswish", True))
#: Base widths of the stem, first block, final expand layer and feature mix layer.
STEM, FIRST, FINAL_EXPAND, FEATURE_MIX = 16, 16, 960, 1280


@register("search_space", "mbv3")
class MBV3Space(SearchSpace):
    """OFA-MobileNetV3: 5 stages x depth {2,3,4} x expansion {3,4,6} x kernel {3,5,7} x resolution."""

    @dataclass(frozen=True)
    class Options:
        resolutions: list[int] = opt([224], min=8, max=MAX_RESOLUTION, min_items=1, unique=True,
                                     help="input sizes to choose from (elastic resolution)")
        width: float = opt(1.0, gt=0, max=4, help="channel width multiplier (OFA: 0.8, 1.0, 1.2)")
        in_channels: int = opt(3, min=1, max=MAX_CHANNELS, help="input channels (3 for RGB)")
        num_classes: int = opt(1000, min=2, max=MAX_CLASSES, help="classifier outputs")
        depths: list[int] = opt([2, 3, 4], min=1, max=8, min_items=1, unique=True, help="depth choices per stage")
        expansions: list[int] = opt([3, 4, 6], min=1, max=8, min_items=1, unique=True,
                                    help="expansion choices per block")
        kernels: list[int] = opt([3, 5, 7], min=1, max=9, min_items=1, unique=True, odd=True,
                                 help="depthwise kernel choices (odd)")
        stage_widths: list[float] = opt([1.0], gt=0, max=1, min_items=1, unique=True,
                                        help="elastic width: multipliers of each stage's output channels to choose "
                                             "from (e.g. [0.5, 0.75, 1.0]); [1.0] = fixed width")

    def __init__(self, options: "MBV3Space.Options | None" = None, **kw: object) -> None:
        self.options = options or MBV3Space.Options(**kw)  # type: ignore[arg-type]
        o = self.options
        self.max_depth = max(o.depths)
        self.c_stem = make_divisible(STEM * o.width)
        self.c_first = make_divisible(FIRST * o.width)
        self.c_stages = [make_divisible(c * o.width) for c, *_ in STAGES]
        self.c_final = make_divisible(FINAL_EXPAND * o.width)
        self.c_mix = make_divisible(FEATURE_MIX * o.width)
        self.elastic_width = len(o.stage_widths) > 1
        super().__init__()

    def build_decisions(self) -> Sequence[Decision]:
        o = self.options
        widths = [Decision(f"s{s}.w", tuple(o.stage_widths)) for s in range(len(STAGES))] if self.elastic_width else []
        return [Decision("resolution", tuple(o.resolutions)), *stage_decisions(o, len(STAGES), self.max_depth), *widths]

    # -- arch helpers -------------------------------------------------------------------
    def resolution_of(self, arch: Arch) -> int:
        return int(self.options.resolutions[self.validate(arch)[0]])

    def stage_choices(self, arch: Arch) -> list[list[tuple[int, int]]]:
        """For each stage, the active blocks' (expansion, kernel) values (after the resolution)."""
        return stage_choices_at(self.validate(arch), 1, self.options, len(STAGES), self.max_depth)

    def active(self, arch: Arch) -> list[int]:
        first_w = len(self.decisions) - len(STAGES)
        widths = list(range(first_w, len(self.decisions))) if self.elastic_width else []
        return [0, *active_at(arch, 1, self.options, len(STAGES), self.max_depth), *widths]

    def channels_at(self, s: int, w: float) -> int:
        """Output channels of stage ``s`` at width multiplier ``w`` (multiples of 8, at most the full width)."""
        return min(self.c_stages[s], make_divisible(self.c_stages[s] * w))

    def stage_widths_of(self, arch: Arch) -> list[float]:
        """Each stage's width multiplier (1.0 everywhere without elastic width)."""
        if not self.elastic_width:
            return [1.0] * len(STAGES)
        arch = self.validate(arch)
        return [float(self.options.stage_widths[i]) for i in arch[-len(STAGES):]]

    def stage_channels(self, arch: Arch) -> list[int]:
        """Each stage's active output channels."""
        return [self.channels_at(s, w) for s, w in enumerate(self.stage_widths_of(arch))]

    def to_str(self, arch: Arch) -> str:
        """E.g. ``r224|d2:e3k5,e6k3|d3:...`` (inactive choices dropped)."""
        widths = [f"w{w:g}" if self.elastic_width else "" for w in self.stage_widths_of(arch)]
        stages = (f"d{len(st)}{w}:" + ",".join(f"e{e}k{k}" for e, k in st)
                  for st, w in zip(self.stage_choices(arch), widths))
        return "|".join([f"r{self.resolution_of(arch)}", *stages])

    def from_str(self, text: str) -> Arch:
        """Inverse of :meth:`to_str`, strictly: an ``rN`` resolution, then ``dN:`` stage
        prefixes of ``eXkY`` blocks, ASCII digits only."""
        o = self.options
        parts = ascii_text("mbv3", text).strip().split("|")
        if len(parts) != 1 + len(STAGES):
            raise ValidationError(f"mbv3: expected a resolution and {len(STAGES)} stages separated by '|', "
                                  f"got {text!r}")
        try:
            m = re.fullmatch(r"r([0-9]+)", parts[0])
            if m is None:
                raise ValueError(parts[0])
            out = [o.resolutions.index(int(m.group(1)))]
            widths = []
            for st in parts[1:]:
                m = re.fullmatch(r"d([0-9]+)(?:w([0-9]*\.?[0-9]+))?:([ek0-9,]*)", st)
                ek = [re.fullmatch(r"e([0-9]+)k([0-9]+)", b) for b in (m.group(3).split(",") if m else [])]
                if m is None or not all(ek) or int(m.group(1)) != len(ek) or (m.group(2) is None) == self.elastic_width:
                    raise ValueError(st)
                if self.elastic_width:
                    widths.append([float(w) for w in o.stage_widths].index(float(m.group(2))))
                out.append(o.depths.index(len(ek)))
                for b in range(self.max_depth):
                    out += [o.expansions.index(int(ek[b].group(1))), o.kernels.index(int(ek[b].group(2)))] \
                        if b < len(ek) else [0, 0]
            out += widths
        except ValueError:
            raise ValidationError(f"mbv3: cannot parse architecture {text!r} (expected e.g. "
                                  f"'r{o.resolutions[0]}|d2:e3k5,e6k3|...', resolutions {list(o.resolutions)}, "
                                  f"depths {list(o.depths)}, expansions {list(o.expansions)}, kernels "
                                  f"{list(o.kernels)}" + (f", stage widths 'd2w0.5:' of {list(o.stage_widths)}"
                                                          if self.elastic_width else "") + ")") from None
        return self.validate(out)

    # -- hardware half -------------------------------------------------------------------
    def _head(self, r: int) -> list[Primitive]:
        """Stem (3x3 s2 conv, h-swish) and the first depthwise-separable block (ReLU)."""
        o = self.options
        r1 = (r + 1) // 2
        return [Primitive("conv", o.in_channels, self.c_stem, r, r, kernel=3, stride=2, act="hswish"),
                Primitive("mbconv", self.c_stem, self.c_first, r1, r1, kernel=3, stride=1, expansion=1, act="relu")]

    def _tail(self, c_in: int, r: int) -> list[Primitive]:
        """Final expand layer, global pooling, feature mix layer (h-swish) and classifier."""
        return [Primitive("conv", c_in, self.c_final, r, r, kernel=1, stride=1, act="hswish"),
                Primitive("pool", self.c_final, self.c_final, r, r, kernel=r, extras=(("mode", "global"),)),
                Primitive("fc", self.c_final, self.c_mix, 1, 1, act="hswish"),
                Primitive("fc", self.c_mix, self.options.num_classes, 1, 1)]

    @staticmethod
    def stage_resolutions(resolution: int) -> list[int]:
        """Input resolution of each stage's first block, then the final one."""
        r = (resolution + 1) // 2
        out = []
        for _, s, _, _ in STAGES:
            out.append(r)
            r = (r + s - 1) // s
        return out + [r]

    def _block(self, s: int, c_in: int, r: int, first: bool, e: int, k: int, c_out: int | None = None) -> Primitive:
        _, stride, act, se = STAGES[s]
        return Primitive("mbconv", c_in, self.c_stages[s] if c_out is None else c_out, r, r, kernel=k,
                         stride=stride if first else 1, expansion=e, act=act, se=se)

    def to_network(self, arch: Arch) -> NetworkSpec:
        o = self.options
        resolution = self.resolution_of(arch)
        nodes = self._head(resolution)
        c = self.c_first
        res = self.stage_resolutions(resolution)
        for s, (blocks, c_out) in enumerate(zip(self.stage_choices(arch), self.stage_channels(arch))):
            for b, (e, k) in enumerate(blocks):
                nodes.append(self._block(s, c, res[s] if b == 0 else res[s + 1], b == 0, e, k, c_out))
                c = c_out
        nodes += self._tail(c, res[-1])
        return NetworkSpec.chain((o.in_channels, resolution, resolution), nodes, space="mbv3",
                                 arch=self.to_str(arch))

    def primitives(self) -> list[Primitive]:
        """Every block any architecture can contain: per resolution and stage, each
        (input width, output width) pair the stage widths allow, times expansion and kernel."""
        o = self.options
        prims: list[Primitive] = []
        for resolution in o.resolutions:
            res = self.stage_resolutions(resolution)
            prims += self._head(resolution)
            ins = [self.c_first]
            for s in range(len(STAGES)):
                outs = sorted({self.channels_at(s, w) for w in o.stage_widths})
                for e in o.expansions:
                    for k in o.kernels:
                        for c_out in outs:
                            prims += [self._block(s, c_in, res[s], True, e, k, c_out) for c_in in ins]
                            if self.max_depth > 1:
                                prims.append(self._block(s, c_out, res[s + 1], False, e, k, c_out))
                ins = outs
            prims += [p for c in ins for p in self._tail(c, res[-1])]
        uniq = {p.key: p for p in prims}
        return [uniq[k] for k in sorted(uniq)]
