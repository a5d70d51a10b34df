"""Transformer and modern-CNN blocks for the kernel job's random networks, written as
``torch.onnx.export`` (TorchScript, opset 17, eval mode) writes them.

Why hand-written ONNX and not torch: as for the convolutional blocks (netbuilder.py), a
network must be drawn in milliseconds. What each block writes was read off torch exports
of the same modules: ``nn.Linear`` on tokens is ``MatMul`` + ``Add`` (constant weight and
bias), ``nn.LayerNorm`` is ``LayerNormalization`` (a ReduceMean/Sub/Pow/Sqrt/Div chain
below opset 17 and in hand-written channels-first norms), exact GELU is
``Div``/``Erf``/``Add``/``Mul``/``Mul``, ``qkv[0]`` is a ``Gather`` with a scalar index,
``k.transpose(-2, -1)`` a ``Transpose``, ``torch.roll`` two ``Slice`` and a ``Concat`` per
axis, ``x.flatten(2).transpose(1, 2)`` a ``Reshape`` and a ``Transpose``. The networks stay
NCHW between blocks; token blocks convert in and out as real hybrid models do.
"""
from __future__ import annotations

import numpy as np

from hwnas.nn.kernels.netbuilder import NetBuilder


class TokenBuilder(NetBuilder):
    """A NetBuilder with token operators and transformer-era blocks. ``style`` holds how the
    next blocks write attention, as the reference code bases differ: ``qkv`` is ``gather``
    (timm's ``qkv[0]``), ``unbind`` (``Split`` + ``Squeeze``) or ``heads`` (EfficientFormer /
    LeViT: per-head ``Split`` of unequal q/k/v sizes on the last axis); ``scale_q`` scales q
    before the product instead of the scores after it."""

    def __init__(self, c_in: int, hw: int, seed: int = 0) -> None:
        super().__init__(c_in, hw, seed)
        self.style: dict[str, object] = {"qkv": "gather", "scale_q": False}

    # -- token operators ---------------------------------------------------------------------
    def const_f(self, values: np.ndarray | float, name: str = "cf") -> str:
        name = self.uid(name)
        arr = np.asarray(values, dtype=np.float32)
        self.inits.append(self.h.make_tensor(name, self.tp.FLOAT, list(arr.shape), arr.reshape(-1).tolist()))
        return name

    def op(self, op: str, inputs: list[str], shape: tuple[int, ...], **attrs: object) -> str:
        return self._node(op, inputs, self.uid(op.lower()), shape, **attrs)

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        return self.op("Reshape", [x, self.const_i64(list(shape))], shape)

    def transpose(self, x: str, perm: tuple[int, ...]) -> str:
        s = self.shapes[x]
        return self.op("Transpose", [x], tuple(s[p] for p in perm), perm=list(perm))

    def to_tokens(self, x: str) -> str:
        """(N, C, H, W) -> (N, HW, C): ``x.flatten(2).transpose(1, 2)``."""
        n, c, hh, ww = self.shapes[x]
        return self.transpose(self.reshape(x, (n, c, hh * ww)), (0, 2, 1))

    def from_tokens(self, t: str, hh: int, ww: int) -> str:
        n, _, c = self.shapes[t]
        return self.reshape(self.transpose(t, (0, 2, 1)), (n, c, hh, ww))

    def linear(self, t: str, d_out: int, bias: bool = True) -> str:
        s = self.shapes[t]
        name = self.uid("linear")
        y = self._node("MatMul", [t, self._w(f"{name}_w", (s[-1], d_out), float(np.sqrt(1.0 / s[-1])))], name,
                       (*s[:-1], d_out))
        return self.op("Add", [y, self.const_f(self.rng.standard_normal(d_out) * 0.01)], self.shapes[y]) if bias else y

    def layernorm(self, t: str, decomposed: bool = False) -> str:
        s = self.shapes[t]
        d = s[-1]
        gain, bias = self.const_f(1.0 + 0.1 * self.rng.standard_normal(d)), self.const_f(0.01 * self.rng.standard_normal(d))
        if not decomposed:
            return self.op("LayerNormalization", [t, gain, bias], s, axis=-1, epsilon=1e-5)
        return self._norm_chain(t, -1, gain, bias)

    def _norm_chain(self, t: str, axis: int, gain: str, bias: str) -> str:
        """mean / sub / pow / mean / add eps / sqrt / div / mul / add, as exporters write a norm."""
        s = self.shapes[t]
        red = tuple(1 if i == axis % len(s) else d for i, d in enumerate(s))
        mu = self.op("ReduceMean", [t], red, axes=[axis], keepdims=1)
        dev = self.op("Sub", [t, mu], s)
        var = self.op("ReduceMean", [self.op("Pow", [dev, self.const_f(2.0)], s)], red, axes=[axis], keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [var, self.const_f(1e-6)], red)], red)
        y = self.op("Div", [dev, std], s)
        return self.op("Add", [self.op("Mul", [y, gain], s), bias], s)

    def channel_norm(self, x: str) -> str:
        """A channels-first layer norm (ConvNeXt's downsampling layers), written by hand in models."""
        c = self.shapes[x][1]
        gain = self.const_f((1.0 + 0.1 * self.rng.standard_normal(c)).reshape(c, 1, 1))
        return self._norm_chain(x, 1, gain, self.const_f(np.zeros((c, 1, 1))))

    def gelu(self, t: str, form: str = "erf") -> str:
        s = self.shapes[t]
        if form == "tanh":
            cube = self.op("Mul", [self.op("Mul", [t, t], s), t], s)
            inner = self.op("Add", [t, self.op("Mul", [cube, self.const_f(0.044715)], s)], s)
            th = self.op("Tanh", [self.op("Mul", [inner, self.const_f(0.7978845608)], s)], s)
            return self.op("Mul", [self.op("Mul", [t, self.op("Add", [th, self.const_f(1.0)], s)], s),
                                   self.const_f(0.5)], s)
        e = self.op("Erf", [self.op("Div", [t, self.const_f(1.4142135)], s)], s)
        return self.op("Mul", [self.op("Mul", [t, self.op("Add", [e, self.const_f(1.0)], s)], s), self.const_f(0.5)], s)

    def mlp(self, t: str, hidden: int, act: str = "gelu") -> str:
        y = self.linear(t, hidden)
        y = self.gelu(y, "tanh" if act == "gelu_tanh" else "erf") if act.startswith("gelu") else self.act(y, act)
        return self.linear(y, self.shapes[t][-1])

    def attention(self, t: str, heads: int, *, key_dim: int = 0, bias: bool = False, act: str = "none") -> str:
        """timm-style MHSA: qkv linear, reshape, permute, Gather q/k/v, q @ k^T * scale
        (+ a relative position bias), softmax, @ v, transpose back, projection."""
        b, n, d = self.shapes[t]
        dh = key_dim or max(d // heads, 1)
        q, k, v = self._qkv(t, heads, dh)
        dv = self.shapes[v][-1]
        if self.style.get("scale_q"):
            q = self.op("Mul", [q, self.const_f(dh ** -0.5)], self.shapes[q])
        att = self.op("MatMul", [q, self.transpose(k, (0, 1, 3, 2))], (b, heads, n, n))
        if not self.style.get("scale_q"):
            att = self.op("Mul", [att, self.const_f(dh ** -0.5)], (b, heads, n, n))
        if bias:
            att = self.op("Add", [att, self.const_f(0.02 * self.rng.standard_normal((heads, n, n)))], (b, heads, n, n))
        windows = int(self.style.get("mask_windows", 0) or 0)  # Swin's shift mask, per window
        if windows > 1 and b % windows == 0:
            m = self.reshape(att, (b // windows, windows, heads, n, n))
            mask = self.const_f(-100.0 * (self.rng.random((1, windows, 1, n, n)) < 0.2))
            att = self.reshape(self.op("Add", [m, mask], self.shapes[m]), (b, heads, n, n))
        att = self.op("Softmax", [att], (b, heads, n, n), axis=-1)
        y = self.op("MatMul", [att, v], (b, heads, n, dv))
        y = self.reshape(self.transpose(y, (0, 2, 1, 3)), (b, n, heads * dv))
        return self.linear(self.act(y, act) if act != "none" else y, d)

    def _qkv(self, t: str, heads: int, dh: int) -> tuple[str, str, str]:
        """q, k, v (b, heads, n, d) from one fused projection, in the style asked for."""
        b, n, _ = self.shapes[t]
        form = self.style.get("qkv", "gather")
        if form == "heads":  # (b, n, h, dh + dh + dv) -> (b, h, n, .) -> Split on the last axis
            dv = 2 * dh
            y = self.transpose(self.reshape(self.linear(t, heads * (2 * dh + dv)), (b, n, heads, 2 * dh + dv)),
                               (0, 2, 1, 3))
            sizes = self.const_i64([dh, dh, dv])
            outs = [f"{self.uid('split')}_{i}" for i in range(3)]
            self.nodes.append(self.h.make_node("Split", [y, sizes], outs, name=outs[0][:-2], axis=-1))
            for o, w in zip(outs, (dh, dh, dv)):
                self.shapes[o] = (b, heads, n, w)
            return outs[0], outs[1], outs[2]
        qkv = self.transpose(self.reshape(self.linear(t, 3 * heads * dh), (b, n, 3, heads, dh)), (2, 0, 3, 1, 4))
        if form == "unbind":  # Split(3, axis 0) + Squeeze each
            outs = [f"{self.uid('split')}_{i}" for i in range(3)]
            self.nodes.append(self.h.make_node("Split", [qkv, self.const_i64([1, 1, 1])], outs, name=outs[0][:-2],
                                               axis=0))
            axes = self.const_i64([0])
            for o in outs:
                self.shapes[o] = (1, b, heads, n, dh)
            q, k, v = (self.op("Squeeze", [o, axes], (b, heads, n, dh)) for o in outs)
            return q, k, v
        idx = [self.uid("idx") for _ in range(3)]
        for i, name in enumerate(idx):
            self.inits.append(self.h.make_tensor(name, self.tp.INT64, [], [i]))
        q, k, v = (self.op("Gather", [qkv, i], (b, heads, n, dh), axis=0) for i in idx)
        return q, k, v

    def encoder(self, t: str, heads: int, ratio: float, *, decomposed: bool = False, gelu: str = "gelu") -> str:
        """Pre-norm transformer layer: x + attn(ln(x)); x + mlp(ln(x))."""
        t = self.add(t, self.attention(self.layernorm(t, decomposed), heads))
        return self.add(t, self.mlp(self.layernorm(t, decomposed), int(self.shapes[t][-1] * ratio), gelu))

    def roll(self, x: str, shift: int, axes: tuple[int, ...]) -> str:
        """``torch.roll``: per axis, two Slices and a Concat."""
        for ax in axes:
            s = list(self.shapes[x])
            size, k = s[ax], shift % s[ax]
            parts = []
            for lo, hi in ((size - k, size), (0, size - k)):
                shape = tuple(hi - lo if i == ax else d for i, d in enumerate(s))
                parts.append(self.op("Slice", [x, self.const_i64([lo]), self.const_i64([hi]), self.const_i64([ax])], shape))
            x = self.op("Concat", parts, tuple(s), axis=ax)
        return x

    # -- blocks (NCHW in, NCHW out) -------------------------------------------------------------
    def vit_block(self, x: str, heads: int, ratio: float, depth: int, *, decomposed: bool = False,
                  gelu: str = "gelu") -> str:
        """``depth`` pre-norm encoder layers over the H*W tokens of ``x``, then a final norm."""
        _, _, hh, ww = self.shapes[x]
        t = self.to_tokens(x)
        for _ in range(depth):
            t = self.encoder(t, heads, ratio, decomposed=decomposed, gelu=gelu)
        return self.from_tokens(self.layernorm(t, decomposed), hh, ww)

    def window_block(self, x: str, heads: int, win: int, shift: bool) -> str:
        """Swin layer: norm, (roll), window partition, attention with a position bias, merge,
        (roll back), residual; then norm + MLP. Needs H and W divisible by ``win``."""
        n, c, hh, ww = self.shapes[x]
        t = self.reshape(self.transpose(x, (0, 2, 3, 1)), (n, hh * ww, c))   # N, HW, C (the shortcut)
        y = self.reshape(self.layernorm(t), (n, hh, ww, c))
        if shift:
            y = self.roll(y, -(win // 2), (1, 2))
        y = self.transpose(self.reshape(y, (n, hh // win, win, ww // win, win, c)), (0, 1, 3, 2, 4, 5))
        nw = n * (hh // win) * (ww // win)
        self.style["mask_windows"] = nw if shift else 0
        y = self.attention(self.reshape(y, (nw, win * win, c)), heads, bias=True)
        self.style["mask_windows"] = 0
        y = self.transpose(self.reshape(y, (n, hh // win, ww // win, win, win, c)), (0, 1, 3, 2, 4, 5))
        y = self.reshape(y, (n, hh, ww, c))
        if shift:
            y = self.roll(y, win // 2, (1, 2))
        t = self.add(t, self.reshape(y, (n, hh * ww, c)))
        t = self.add(t, self.mlp(self.layernorm(t), 4 * c))
        return self.reshape(self.transpose(self.reshape(t, (n, hh, ww, c)), (0, 3, 1, 2)), (n, c, hh, ww))

    def convnext_block(self, x: str, k: int, ratio: float) -> str:
        """dw k x k -> channels-last -> LayerNorm -> MLP (GELU) -> layer scale -> back -> residual."""
        c = self.shapes[x][1]
        y = self.transpose(self.conv_act(x, c, k, 1, c, "none"), (0, 2, 3, 1))
        y = self.mlp(self.layernorm(y), int(c * ratio))
        y = self.op("Mul", [y, self.const_f(np.full(c, 1e-1))], self.shapes[y])
        return self.add(x, self.transpose(y, (0, 3, 1, 2)))

    def convnext_down(self, x: str, c_out: int) -> str:
        """ConvNeXt's downsampling: channels-first norm (hand-written), 2x2 stride-2 convolution."""
        return self.conv_patch(self.channel_norm(x), c_out, 2)

    def conv_patch(self, x: str, c_out: int, p: int) -> str:
        """A p x p stride-p convolution (patch embedding / merging)."""
        n, c, hh, ww = self.shapes[x]
        name = self.uid("patch")
        w = self._w(f"{name}_w", (c_out, c, p, p))
        b = self.const_f(np.zeros(c_out))
        return self._node("Conv", [x, w, b], name, (n, c_out, hh // p, ww // p), kernel_shape=[p, p], pads=[0] * 4,
                          strides=[p, p], group=1)

    def mobilevit_block(self, x: str, d: int, heads: int, depth: int) -> str:
        """Local conv, unfold into 2x2 patches of tokens, transformer layers, fold, fuse."""
        n, c, hh, ww = self.shapes[x]
        y = self.conv_act(self.conv_act(x, c, 3, a="swish"), d, 1, a="none")
        y = self.transpose(self.reshape(y, (n, d, hh // 2, 2, ww // 2, 2)), (0, 3, 5, 2, 4, 1))
        t = self.reshape(y, (n * 4, (hh // 2) * (ww // 2), d))
        for _ in range(depth):
            t = self.encoder(t, heads, 2.0, gelu="swish")
        t = self.layernorm(t)
        y = self.transpose(self.reshape(t, (n, 2, 2, hh // 2, ww // 2, d)), (0, 5, 3, 1, 4, 2))
        y = self.conv_act(self.reshape(y, (n, d, hh, ww)), c, 1, a="swish")
        return self.conv_act(self.concat([x, y]), c, 3, a="swish")

    def poolmixer_block(self, x: str, ratio: float) -> str:
        """EfficientFormer's 4D block: x + ls * (avgpool(x) - x); x + ls * mlp(x) (1x1 convs, GELU)."""
        n, c, hh, ww = self.shapes[x]
        p = self._node("AveragePool", [x], self.uid("avgpool"), (n, c, hh, ww), kernel_shape=[3, 3], pads=[1] * 4,
                       strides=[1, 1], count_include_pad=0)
        y = self.op("Mul", [self.op("Sub", [p, x], (n, c, hh, ww)), self.const_f(np.full((c, 1, 1), 0.1))],
                    (n, c, hh, ww))
        x = self.add(x, y)
        y = self.conv_act(self.gelu(self.conv_act(x, int(c * ratio), 1, a="none")), c, 1, a="none")
        return self.add(x, self.op("Mul", [y, self.const_f(np.full((c, 1, 1), 0.1))], (n, c, hh, ww)))

    def linear_bn(self, t: str, d_out: int) -> str:
        """LeViT's Linear + BatchNorm1d over flattened tokens (the norm is not folded by the exporter)."""
        b, n, _ = self.shapes[t]
        y = self.op("Flatten", [self.linear(t, d_out, bias=False)], (b * n, d_out), axis=2)
        return self.reshape(self.bn(y), (b, n, d_out))

    def subsample(self, t: str, hh: int, ww: int) -> str:
        """LeViT's shrinking queries: ``x.view(b, h, w, c)[:, ::2, ::2].reshape(b, -1, c)``."""
        b, _, c = self.shapes[t]
        y = self.reshape(t, (b, hh, ww, c))
        for ax in (1, 2):
            s = list(self.shapes[y])
            s[ax] = (s[ax] + 1) // 2
            y = self.op("Slice", [y, self.const_i64([0]), self.const_i64([s[ax] * 2]), self.const_i64([ax]),
                                  self.const_i64([2])], tuple(s))
        return self.reshape(y, (b, self.shapes[y][1] * self.shapes[y][2], c))

    def patch_merge(self, x: str) -> str:
        """Swin's patch merging: four step-2 slices (NHWC), concat, LayerNorm, linear 4C -> 2C."""
        n, c, hh, ww = self.shapes[x]
        t = self.transpose(x, (0, 2, 3, 1))
        parts = []
        for oy, ox in ((0, 0), (1, 0), (0, 1), (1, 1)):
            y = self.op("Slice", [t, self.const_i64([oy, ox]), self.const_i64([hh, ww]), self.const_i64([1, 2]),
                                  self.const_i64([2, 2])], (n, hh // 2, ww // 2, c))
            parts.append(y)
        y = self.op("Concat", parts, (n, hh // 2, ww // 2, 4 * c), axis=-1)
        y = self.linear(self.layernorm(self.reshape(y, (n, hh * ww // 4, 4 * c))), 2 * c, bias=False)
        return self.from_tokens(y, hh // 2, ww // 2)

    def token_head(self, x: str, classes: int, cls: int = 0) -> str:
        """Transformer heads: LayerNorm, mean over tokens, linear classifier; with ``cls``
        class tokens (1: ViT, 2: DeiT's class and distillation tokens) concatenated in front,
        one encoder layer, then the tokens picked (``x[:, i]``: Gather) into averaged heads."""
        t = self.to_tokens(x)
        b, n, d = self.shapes[t]
        if not cls:
            y = self.op("ReduceMean", [self.layernorm(t)], (b, d), axes=[1], keepdims=0)
            return self.fc(y, classes, self.uid("fc"))
        tokens = self.const_f(0.02 * self.rng.standard_normal((b, cls, d)))
        t = self.op("Concat", [tokens, t], (b, n + cls, d), axis=1)
        heads = next(h for h in (6, 4, 3, 2, 1) if d % h == 0 and (d // h >= 16 or h == 1))
        t = self.layernorm(self.encoder(t, heads, 4.0))
        outs = []
        for i in range(cls):
            idx = self.uid("idx")
            self.inits.append(self.h.make_tensor(idx, self.tp.INT64, [], [i]))
            outs.append(self.fc(self.op("Gather", [t, idx], (b, d), axis=1), classes, self.uid("fc")))
        if cls == 1:
            return outs[0]
        return self.op("Div", [self.add(outs[0], outs[1]), self.const_f(2.0)], (b, classes))

    def levit_block(self, x: str, heads: int, key_dim: int) -> str:
        """LeViT layer: attention (q/k/v/proj as Linear+BN, hard-swish before the projection,
        attention bias) and a hard-swish MLP, each residual."""
        _, c, hh, ww = self.shapes[x]
        t = self.to_tokens(x)
        t = self.add(t, self.attention(t, heads, key_dim=key_dim, bias=True, act="hswish"))
        y = self.linear_bn(self.act(self.linear_bn(t, 2 * c), "hswish"), c)
        return self.from_tokens(self.add(t, y), hh, ww)
