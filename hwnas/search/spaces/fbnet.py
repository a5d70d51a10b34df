"""FBNet space as used by HW-NAS-Bench on CIFAR-100 (22 searchable layers).

Each layer picks one of 9 ops: kernel {3,5} x expansion {1,3,6}, group-2 pointwise
variants of the e1 blocks, or ``skip``. Where ``skip`` sits at a layer that changes
shape (stride 2 or new width) it is a 1x1 projection (conv + BN), as in FBNet's
reference code; elsewhere it is the identity. Macro layout (stem 16 channels, stride 1
on 32x32; stage widths 16-24-32-64-112-184-352 with 1-4-4-4-4-4-1 layers and strides
1-1-2-2-1-2-1; a 1x1 conv to 1504; pool; classifier) follows our reading of the
HW-NAS-Bench FBNet definition.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from hwnas.config import opt
from hwnas.errors import ValidationError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register
from hwnas.search.spaces.base import MAX_CHANNELS, MAX_CLASSES, MAX_RESOLUTION, Arch, Decision, SearchSpace, ascii_text
from hwnas.search.spaces.differentiable import CostTerm, MixedLayer, chain_cost_terms

OPS: tuple[str, ...] = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
#: (channels, layers, stride of the first layer)
STAGES: tuple[tuple[int, int, int], ...] = ((16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1),
                                            (184, 4, 2), (352, 1, 1))


def parse_op(op: str) -> tuple[int, int, int]:
    """``k5_e1_g2`` -> (kernel 5, expansion 1, groups 2)."""
    parts = op.split("_")
    return int(parts[0][1:]), int(parts[1][1:]), int(parts[2][1:]) if len(parts) > 2 else 1


@register("search_space", "fbnet")
class FBNetSpace(SearchSpace):
    """FBNet (HW-NAS-Bench CIFAR-100 layout): 22 layers x 9 ops."""

    @dataclass(frozen=True)
    class Options:
        resolution: int = opt(32, min=4, max=MAX_RESOLUTION, help="input height and width")
        in_channels: int = opt(3, min=1, max=MAX_CHANNELS, help="input channels")
        num_classes: int = opt(100, min=2, max=MAX_CLASSES, help="classifier outputs")
        head_channels: int = opt(1504, min=1, max=MAX_CHANNELS, help="channels of the last 1x1 conv")

    def __init__(self, options: "FBNetSpace.Options | None" = None, **kw: object) -> None:
        self.options = options or FBNetSpace.Options(**kw)  # type: ignore[arg-type]
        self.layers: list[tuple[int, int, int, int]] = []  # (c_in, c_out, stride, input res)
        c, r = 16, self.options.resolution
        for c_out, n, s in STAGES:
            for i in range(n):
                stride = s if i == 0 else 1
                self.layers.append((c, c_out, stride, r))
                c, r = c_out, (r + stride - 1) // stride
        self.final = (c, r)
        super().__init__()

    def build_decisions(self) -> Sequence[Decision]:
        return [Decision(f"layer{i}", OPS) for i in range(len(self.layers))]

    def to_str(self, arch: Arch) -> str:
        return " ".join(OPS[a] for a in self.validate(arch))

    def from_str(self, text: str) -> Arch:
        toks = ascii_text("fbnet", text).split()
        bad = [t for t in toks if t not in OPS]
        if bad or len(toks) != len(self.layers):
            raise ValidationError(f"fbnet: expected {len(self.layers)} ops from {', '.join(OPS)}; got {text!r}")
        return tuple(OPS.index(t) for t in toks)

    def layer_prim(self, i: int, op: str) -> Primitive:
        c_in, c_out, stride, r = self.layers[i]
        if op == "skip":
            if c_in == c_out and stride == 1:
                return Primitive("skip_connect", c_in, c_out, r, r)
            return Primitive("conv", c_in, c_out, r, r, kernel=1, stride=stride)
        k, e, g = parse_op(op)
        return Primitive("mbconv", c_in, c_out, r, r, kernel=k, stride=stride, expansion=e, groups=g, act="relu")

    def _stem(self) -> Primitive:
        o = self.options
        return Primitive("conv", o.in_channels, 16, o.resolution, o.resolution, kernel=3, act="relu")

    def _tail(self) -> list[Primitive]:
        o = self.options
        c, r = self.final
        return [Primitive("conv", c, o.head_channels, r, r, kernel=1, act="relu"),
                Primitive("pool", o.head_channels, o.head_channels, r, r, kernel=r, extras=(("mode", "global"),)),
                Primitive("fc", o.head_channels, o.num_classes, 1, 1)]

    def to_network(self, arch: Arch) -> NetworkSpec:
        o = self.options
        nodes = [self._stem()] + [self.layer_prim(i, OPS[a]) for i, a in enumerate(self.validate(arch))] + self._tail()
        return NetworkSpec.chain((o.in_channels, o.resolution, o.resolution), nodes, space="fbnet",
                                 arch=self.to_str(arch))

    def primitives(self) -> list[Primitive]:
        prims = [self._stem(), *self._tail()]
        prims += [self.layer_prim(i, op) for i in range(len(self.layers)) for op in OPS]
        uniq = {p.key: p for p in prims}
        return [uniq[k] for k in sorted(uniq)]

    # -- differentiable search: one group per layer (the default), FBNet's supernet --------
    def mixed_chain(self) -> list[Primitive | MixedLayer]:
        """Stem, one mixed layer per searchable layer (its 9 candidate blocks), tail."""
        layers = [MixedLayer(d.name, 0, tuple(self.layer_prim(i, op) for op in OPS))
                  for i, d in enumerate(self.decisions)]
        return [self._stem(), *layers, *self._tail()]

    def cost_terms(self) -> list[CostTerm]:
        chain = self.mixed_chain()
        return chain_cost_terms([p for p in chain if isinstance(p, Primitive)],
                                [m for m in chain if isinstance(m, MixedLayer)])

