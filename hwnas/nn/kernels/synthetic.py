"""Random networks for the kernel job: kernels sampled from realistic ranges, in context.

Why whole networks and not one kernel per model: a kernel alone runs with its weights
and input hot in cache and pays layout reorders a model does not (measured: a depthwise
convolution alone ran 35% faster than inside MobileNetV2, a 1x1 convolution 10-20%), so
each kernel is measured where it belongs: inside a network, with the runtime's profiler
timing every node. One network of 30-80 kernels is one job item and yields a sample for
each of its kernels.

A network is a stem, 2-5 stages of blocks drawn from the families real models are built
of (plain convolutions, depthwise-separable, inverted residuals with or without SE and
with ReLU/ReLU6/h-swish/swish, ResNet basic and bottleneck, ShuffleNetV2 units, DenseNet
layers, SqueezeNet fires, NAS-Bench-201 cells), then a classifier. Widths, kernels,
strides, expansions and the input resolution (32-288) are drawn at random; widths are
mostly multiples of 8, sometimes of 4 or 2 (ShuffleNet's 58 and 116 exist). A cap on the
multiply-adds keeps one item under a few seconds. ``weights`` (adaptive sampling) makes
block families whose kernels the current predictors get wrong more frequent.

Strides: each stage opens with a stride-2 block, except that a convolutional first stage
keeps the stem's resolution half the time (``FIRST_STAGE_STRIDE1``), as MobileNetV2/V3,
MnasNet, EfficientNet and ProxylessNAS do at 112x112 and ResNet/DenseNet after their max
pool: without it no random network ran a stride-1 block at the stem's resolution, the
layers where real mobile models spend much of their time (sampler version 2; version 3:
widths of 2 mod 4, see ``_width``). Networks drawn by an earlier version stay valid
measurements; a seed simply draws another network now.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from hwnas.nn.kernels.token_blocks import TOKEN_BLOCKS, token_block
from hwnas.nn.kernels.tokenbuilder import TokenBuilder

BLOCKS: tuple[str, ...] = ("plain", "dwsep", "mbconv", "mbconv_se", "basic", "bottleneck", "shuffle", "dense",
                           "fire", "nb201", "pools", *TOKEN_BLOCKS)
RESOLUTIONS = (32, 48, 56, 64, 96, 112, 128, 144, 160, 176, 192, 224, 240, 256, 288)
ACTS = ("relu", "relu6", "hswish", "swish", "relu", "relu6", "sigmoid", "tanh", "leakyrelu", "hsigmoid")
NB201_EDGE = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
MAX_MACS = 2.5e9
#: Changes whenever the same seed would draw another network (stored with every draw, so a
#: resumed job never mistakes an older version's network for this one's).
SAMPLER_VERSION = 3
#: How often a convolutional first stage runs at the stem's resolution (stride 1).
FIRST_STAGE_STRIDE1 = 0.5


@dataclass
class SampledNet:
    """One random network: ONNX bytes, its input, and what was drawn."""

    data: bytes
    input_shape: tuple[int, int, int, int]
    seed: int
    blocks: list[str] = field(default_factory=list)
    macs: float = 0.0


def _width(rng: np.random.Generator, v: float, lo: int = 8, hi: int = 2048) -> int:
    """A width near ``v``: a multiple of 8 or 16 mostly, and sometimes a multiple of 4 or of 2
    *only* (ShuffleNetV2's 58 and 122 exist, and ONNX Runtime runs a depthwise convolution
    of 2 mod 4 channels about 3x slower). Rounding to a multiple of 4 or 2 alone is not
    enough: ``v`` is mostly a multiple of 8 already, so it stayed aligned (sampler version 2
    drew 17 such widths in 5,405 convolutions)."""
    q = int(rng.choice([8, 8, 8, 8, 8, 16, 4, 2]))
    w = round(v / q) * q
    if q < 8 and w % (2 * q) == 0:  # a multiple of q only: one step of q up or down
        w += q * int(rng.choice([-1, 1]))
    return int(min(hi, max(lo, w)))


class _Sampler:
    def __init__(self, seed: int, weights: Mapping[str, float] | None, max_macs: float = MAX_MACS,
                 max_resolution: int = RESOLUTIONS[-1]) -> None:
        self.rng = np.random.default_rng(seed)
        w = np.array([float((weights or {}).get(b, 1.0)) for b in BLOCKS])
        self.p = w / w.sum()
        self.macs = 0.0
        self.max_macs = max_macs
        self.resolutions = [r for r in RESOLUTIONS if r <= max_resolution] or [RESOLUTIONS[0]]

    def track(self, nb: TokenBuilder, x: str, before: int) -> None:
        """Add the multiply-adds of the convolutions and fcs emitted since node ``before``."""
        for node in nb.nodes[before:]:
            if node.op_type in ("Conv", "Gemm"):
                out = nb.shapes[node.output[0]]
                w = next(t for t in nb.inits if t.name == node.input[1])
                self.macs += float(np.prod(out)) * float(np.prod(w.dims[1:]))
            elif node.op_type == "MatMul":  # linear layers over tokens and batched matmuls
                self.macs += float(np.prod(nb.shapes[node.output[0]])) * float(nb.shapes[node.input[0]][-1])

    def block(self, nb: TokenBuilder, x: str, kind: str, c_out: int, s: int) -> str:
        r, c = self.rng, nb.shapes[x][1]
        if kind in TOKEN_BLOCKS:
            return token_block(nb, r, x, kind, c_out, s)
        a = str(r.choice(ACTS))
        if kind == "plain":
            return nb.conv_act(x, c_out, int(r.choice([1, 3, 3, 5, 7])), s, a=a)
        if kind == "dwsep":
            y = nb.conv_act(x, c, int(r.choice([3, 5, 7])), s, groups=c, a=a)
            return nb.conv_act(y, c_out, 1, a=a)
        if kind in ("mbconv", "mbconv_se"):
            mid = _width(r, c * float(r.choice([1, 2, 3, 4, 6])))
            a = str(r.choice(["relu", "relu6", "hswish", "swish"]))
            se = _width(r, mid / 4) if kind == "mbconv_se" else 0
            gate = "sigmoid" if a == "swish" or r.random() < 0.3 else "hsigmoid"
            return nb.mbconv(x, c_out, int(r.choice([3, 5, 7])), s, mid, a, se, gate)
        if kind == "basic":
            return nb.basic(x, c_out, s)
        if kind == "bottleneck":
            mid = _width(r, c_out / float(r.choice([2, 4])))
            groups = int(r.choice([1, 1, 1, 2, 4, 32])) if mid % 32 == 0 else 1
            return nb.bottleneck(x, mid, c_out, s, groups)
        if kind == "shuffle":
            c_out -= c_out % 4
            if s == 1 and c != c_out:
                c_out = c - c % 2
            return nb.shuffle_unit(x, c_out, s)
        if kind == "dense":
            growth = int(r.choice([12, 16, 24, 32, 48]))
            for _ in range(int(r.integers(1, 5))):
                x = nb.dense_layer(x, growth)
            return nb.transition(x, _width(r, nb.shapes[x][1] / 2)) if s == 2 else x
        if kind == "fire":
            y = nb.fire(x, _width(r, c_out / 8, lo=4), c_out // 2)
            return nb.pool2(y, "maxpool", 3, 2) if s == 2 else y
        if kind == "nb201":
            ops = [str(o) for o in r.choice(NB201_EDGE, size=6)]
            y = nb.nb201_cell(x, ops)
            return nb.conv_act(y, c_out, 3, s, a="none") if s == 2 or c_out != c else y
        y = nb.pool2(x, str(r.choice(["maxpool", "avgpool"])), int(r.choice([2, 3])), 2) if s == 2 else x
        return nb.act(y, a)

    def network(self, seed: int) -> SampledNet:
        r = self.rng
        res = int(r.choice(self.resolutions))
        nb = TokenBuilder(3, res, seed)
        c = int(r.choice([8, 16, 16, 24, 32, 32, 48, 64]))
        x = nb.conv_act("x", c, int(r.choice([3, 3, 5, 7])), 2 if res > 48 else 1, a=str(r.choice(ACTS[:4])))
        if res >= 192 and r.random() < 0.3:
            x = nb.pool2(x, "maxpool", 3, 2)
        kinds: list[str] = []
        for stage in range(int(r.integers(2, 6))):
            kind = str(r.choice(BLOCKS, p=self.p))
            h = nb.shapes[x][2]
            keep = stage == 0 and kind not in TOKEN_BLOCKS and r.random() < FIRST_STAGE_STRIDE1
            c_next = _width(r, nb.shapes[x][1] * float(r.choice([1.0, 1.5, 2.0, 2.0, 3.0])),
                            hi=2048 if kind == "bottleneck" else 1024)
            if kind in TOKEN_BLOCKS:  # heads of 16-64 dims: widths a multiple of 16, as real models have
                c_next = int(min(512, max(32, round(c_next / 16) * 16)))
            for i in range(int(r.integers(1, 4))):
                before = len(nb.nodes)
                x = self.block(nb, x, kind, c_next, 2 if i == 0 and h >= 8 and not keep else 1)
                self.track(nb, x, before)
                kinds.append(kind)
                if self.macs > self.max_macs:
                    break
            if self.macs > self.max_macs:
                break
        if kinds and kinds[-1] in TOKEN_BLOCKS and r.random() < 0.7:  # transformer heads (class tokens: ViT/DeiT)
            few = nb.shapes[x][2] * nb.shapes[x][3] <= 1024
            cls = int(r.choice([1, 1, 2, 0])) if kinds[-1] in ("vit", "levit") and few else 0
            x = nb.token_head(x, int(r.choice([10, 100, 1000])), cls)
        else:
            x = nb.head(x, int(r.choice([10, 100, 1000])), int(r.choice([0, 0, 0, 1024, 1280])))
        return SampledNet(nb.to_bytes([x], post=False), (1, 3, res, res), seed, kinds, self.macs)


def sample_network(seed: int, weights: Mapping[str, float] | None = None, *, max_macs: float = MAX_MACS,
                   max_resolution: int = RESOLUTIONS[-1]) -> SampledNet:
    """The random network of ``seed`` (deterministic), block families weighted by ``weights``;
    ``max_macs`` and ``max_resolution`` bound its size (small values for quick trials)."""
    return _Sampler(seed, weights, max_macs, max_resolution).network(seed)


def describe(net: SampledNet) -> dict[str, Any]:
    return {"seed": net.seed, "input": list(net.input_shape), "blocks": net.blocks, "gmacs": round(net.macs / 1e9, 4),
            "sampler": SAMPLER_VERSION}
