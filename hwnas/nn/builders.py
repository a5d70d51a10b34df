"""Torch modules for primitives and whole networks.

Every op named in a :class:`~hwnas.primitives.Primitive` has one builder registered
under role ``op``; :func:`build_primitive` looks it up, so plugins can add ops without
touching this file. Builders follow the reference definitions (MobileNetV2/V3 inverted
residuals, NAS-Bench-201 ReLU-Conv-BN edges and residual block) because the profiled
latency must be that of the block the search space means, not of a look-alike.

Every module takes an ``(N, C, H, W)`` tensor and returns ``(N, c_out, *out_hw)``,
except ``fc``, which returns ``(N, c_out)`` like a classifier.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from hwnas import registry
from hwnas.errors import ProfilingError
from hwnas.primitives import NetworkSpec, Primitive

Builder = Callable[[Primitive], nn.Module]


def make_act(name: str) -> nn.Module:
    """Activation module by Primitive.act name (``none`` -> identity)."""
    table: dict[str, Callable[[], nn.Module]] = {
        "none": nn.Identity, "relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish,
        "swish": nn.SiLU, "sigmoid": nn.Sigmoid,
    }
    try:
        return table[name]()
    except KeyError:
        raise ProfilingError(f"unknown activation {name!r}") from None


def _divisible(v: float, d: int = 8) -> int:
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: str = "none") -> nn.Sequential:
    """Conv (no bias, 'same' padding k//2) + BN + activation: the unit of every CNN block."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), make_act(act))


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: global pool, reduce x4, ReLU, expand, hard-sigmoid gate."""

    def __init__(self, c: int) -> None:
        super().__init__()
        mid = _divisible(c / 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(c, mid, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(mid, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (skipped at e1), kxk depthwise, SE, 1x1 project."""

    def __init__(self, p: Primitive) -> None:
        super().__init__()
        mid = int(round(p.c_in * p.expansion))
        g = p.groups
        if mid % g:
            mid = (mid // g + 1) * g
        layers: list[nn.Module] = []
        if p.expansion != 1:
            layers.append(conv_bn(p.c_in, mid, 1, groups=g, act=p.act))
        else:
            mid = p.c_in
        layers.append(conv_bn(mid, mid, p.kernel, p.stride, groups=mid, act=p.act))
        if p.se:
            layers.append(SqueezeExcite(mid))
        layers.append(conv_bn(mid, p.c_out, 1, groups=g))
        self.body = nn.Sequential(*layers)
        self.residual = p.stride == 1 and p.c_in == p.c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Zero(nn.Module):
    """NB201 ``none``: zeros of the output shape, computed from the input so the graph
    keeps its input (some runtimes reject models whose input is unused)."""

    def __init__(self, p: Primitive) -> None:
        super().__init__()
        self.stride, self.c_out = p.stride, p.c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x[:, :, ::self.stride, ::self.stride] * 0.0
        if y.shape[1] == self.c_out:
            return y
        reps = -(-self.c_out // y.shape[1])
        return y.repeat(1, reps, 1, 1)[:, :self.c_out]


class GlobalPool(nn.Module):
    """Adaptive average pool to 1x1, then the activation (NB201 puts ReLU there)."""

    def __init__(self, act: str) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pool(x))


class NB201ResBlock(nn.Module):
    """NAS-Bench-201 ResNet basic block (stride 2) between stages."""

    def __init__(self, p: Primitive) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.ReLU(), *conv_bn(p.c_in, p.c_out, 3, p.stride))
        self.b = nn.Sequential(nn.ReLU(), *conv_bn(p.c_out, p.c_out, 3, 1))
        self.down = nn.Sequential(nn.AvgPool2d(p.stride, p.stride, ceil_mode=True),
                                  nn.Conv2d(p.c_in, p.c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.down(x)


def _same_shape(p: Primitive) -> None:
    if p.c_in != p.c_out or p.stride != 1:
        raise ProfilingError(f"{p.key}: {p.op} needs c_in == c_out and stride 1")


# -- registered builders -----------------------------------------------------------------
@registry.register("op", "conv")
def build_conv(p: Primitive) -> nn.Module:
    """kxk convolution + BN + activation."""
    return conv_bn(p.c_in, p.c_out, p.kernel, p.stride, p.groups, p.act)


@registry.register("op", "dwconv")
def build_dwconv(p: Primitive) -> nn.Module:
    """Depthwise kxk convolution (groups = c_in) + BN + activation."""
    return conv_bn(p.c_in, p.c_out, p.kernel, p.stride, p.c_in, p.act)


@registry.register("op", "mbconv")
def build_mbconv(p: Primitive) -> nn.Module:
    """MobileNetV2/V3 inverted residual block."""
    return MBConv(p)


@registry.register("op", "pool")
def build_pool(p: Primitive) -> nn.Module:
    """Pooling: extras mode=avg|max (kxk, stride, pad k//2) or global (to 1x1)."""
    if p.c_in != p.c_out:
        raise ProfilingError(f"{p.key}: pool keeps the channels; it needs c_in == c_out")
    mode = p.extra("mode", "avg")
    if mode == "global":
        return GlobalPool(p.act)
    if mode == "avg":
        pool: nn.Module = nn.AvgPool2d(p.kernel, p.stride, p.kernel // 2, count_include_pad=False)
    elif mode == "max":
        pool = nn.MaxPool2d(p.kernel, p.stride, p.kernel // 2)
    else:
        raise ProfilingError(f"{p.key}: pool mode must be avg, max or global, got {mode!r}")
    return nn.Sequential(pool, make_act(p.act))


@registry.register("op", "fc")
def build_fc(p: Primitive) -> nn.Module:
    """Flatten + Linear (classifier), then the activation if any (MobileNetV3's feature
    mix layer); output (N, c_out)."""
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(p.c_in * p.h * p.w, p.c_out)]
    return nn.Sequential(*layers, *([make_act(p.act)] if p.act != "none" else []))


@registry.register("op", "nor_conv_1x1")
def build_nor_conv_1x1(p: Primitive) -> nn.Module:
    """NB201 ReLU-Conv1x1-BN."""
    return nn.Sequential(nn.ReLU(), *conv_bn(p.c_in, p.c_out, 1, p.stride))


@registry.register("op", "nor_conv_3x3")
def build_nor_conv_3x3(p: Primitive) -> nn.Module:
    """NB201 ReLU-Conv3x3-BN."""
    return nn.Sequential(nn.ReLU(), *conv_bn(p.c_in, p.c_out, 3, p.stride))


@registry.register("op", "avg_pool_3x3")
def build_avg_pool_3x3(p: Primitive) -> nn.Module:
    """NB201 3x3 average pool (stride 1, pad 1, padding not counted)."""
    _same_shape(p)
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


@registry.register("op", "skip_connect")
def build_skip_connect(p: Primitive) -> nn.Module:
    """Identity edge."""
    _same_shape(p)
    return nn.Identity()


@registry.register("op", "identity")
def build_identity(p: Primitive) -> nn.Module:
    """Identity (no computation)."""
    _same_shape(p)
    return nn.Identity()


@registry.register("op", "none")
def build_none(p: Primitive) -> nn.Module:
    """NB201 zero edge."""
    return Zero(p)


@registry.register("op", "nb201_resblock")
def build_nb201_resblock(p: Primitive) -> nn.Module:
    """NB201 residual block between stages."""
    return NB201ResBlock(p)


# -- public API ---------------------------------------------------------------------------
def build_primitive(p: Primitive, seed: int = 0) -> nn.Module:
    """The torch module of one primitive, in eval mode (an unknown op raises RegistryError).

    Weights are drawn from a fixed seed so every backend exports the same model and
    their outputs can be compared; the global RNG state is left untouched.
    """
    builder: Builder = registry.get("op", p.op)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(p).eval()


def input_shape(p: Primitive, batch: int = 1) -> tuple[int, int, int, int]:
    """The (N, C, H, W) input a primitive's module takes."""
    return (batch, p.c_in, p.h, p.w)


class Network(nn.Module):
    """A NetworkSpec as a module: node 0 reads the input, merges sum (a module with
    ``takes_inputs_apart`` gets the inputs as a list instead), last node is output.

    Intermediate outputs are dropped after their last consumer so memory stays at the
    width of the graph, not its length.
    """

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(build_primitive(p) for p in spec.nodes)
        self.preds: list[list[int]] = [spec.predecessors(j) for j in range(len(spec.nodes))]
        last_use = {i: i for i in range(len(spec.nodes))}
        for a, b in spec.edges:
            last_use[a] = max(last_use[a], b)
        self.free_after: list[list[int]] = [[] for _ in spec.nodes]
        for i, j in last_use.items():
            if i != len(spec.nodes) - 1:
                self.free_after[j].append(i)

    def node_output(self, j: int, mod: nn.Module, x: torch.Tensor, outs: dict[int, torch.Tensor]) -> torch.Tensor:
        """Node ``j``'s output: its module applied to the sum of its predecessors' outputs,
        or to the list of them (in node order) for modules that take their inputs apart
        (a cell's concatenation)."""
        if j == 0:
            return mod(x)
        preds = self.preds[j]
        if getattr(mod, "takes_inputs_apart", False):
            return mod(*(outs[p] for p in preds))
        inp = outs[preds[0]]
        for p in preds[1:]:
            inp = inp + outs[p]
        return mod(inp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: dict[int, torch.Tensor] = {}
        for j, mod in enumerate(self.nodes):
            outs[j] = self.node_output(j, mod, x, outs)
            for i in self.free_after[j]:
                outs.pop(i, None)
        return outs[len(self.nodes) - 1]


def build_network(spec: NetworkSpec, seed: int = 0) -> nn.Module:
    """The torch module of a whole network, in eval mode, with seeded weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Network(spec).eval()


def build(target: Primitive | NetworkSpec) -> nn.Module:
    """Module for either record (backends call this)."""
    return build_network(target) if isinstance(target, NetworkSpec) else build_primitive(target)


def example_input(target: Primitive | NetworkSpec, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A deterministic random input of the right shape."""
    shape = (batch, *target.input_shape) if isinstance(target, NetworkSpec) else input_shape(target, batch)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g)
