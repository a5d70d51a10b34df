"""The kernel job's transformer-era block families, drawn at the ranges real models use.

Why these families: each brings kernels the convolutional families never produce, in the
context and at the sizes the zoo's modern models run them (without ever building a zoo
model): ``vit`` (ViT/DeiT encoder layers: LayerNorm, batched matmuls, softmax, GELU,
Gather/Transpose/Reshape around attention; dims 64-384, 1-12 heads, 16-1024 tokens),
``window`` (Swin: window partition/merge, shifted windows via roll, attention bias),
``convnext`` (7x7 and 9x9 depthwise, channels-last LayerNorm, MLP, layer scale,
hand-written channels-first norm when downsampling), ``mobilevit`` (unfold into patches,
transformer layers with SiLU, fold), ``poolmixer`` (EfficientFormer's pool - x mixer)
and ``levit`` (attention with hard-swish and Linear+BatchNorm over tokens).

Token counts are kept to what the models run at (a stride-p patch embedding first when
a feature map has more than 1024 positions); the sampler's multiply-add cap bounds the rest.
"""
from __future__ import annotations

import numpy as np

from hwnas.nn.kernels.tokenbuilder import TokenBuilder

TOKEN_BLOCKS: tuple[str, ...] = ("vit", "window", "convnext", "mobilevit", "poolmixer", "levit")
MAX_TOKENS = 1024


def _heads(r: np.random.Generator, d: int, lo: int = 16, hi: int = 64) -> int:
    """A head count giving heads of lo..hi dims that divide ``d`` (1 when none does)."""
    options = [h for h in (1, 2, 3, 4, 6, 8, 12) if d % h == 0 and lo <= d // h <= hi]
    return int(r.choice(options)) if options else 1


def _enter(nb: TokenBuilder, r: np.random.Generator, x: str, c_out: int, s: int, max_tokens: int = MAX_TOKENS) -> str:
    """Patch embedding / merging into a token stage: a stride-p convolution when the stage
    downsamples, changes width, or has too many positions for attention."""
    _, c, hh, ww = nb.shapes[x]
    p = s
    while hh // max(p, 1) * (ww // max(p, 1)) > max_tokens and hh // (2 * max(p, 1)) >= 2:
        p = 2 * max(p, 1)
    if p > 1 or c != c_out:
        return nb.conv_patch(x, c_out, max(p, 1)) if p > 1 else nb.conv_act(x, c_out, 1, a="none")
    return x


def token_block(nb: TokenBuilder, r: np.random.Generator, x: str, kind: str, c_out: int, s: int) -> str:
    """One block of a token family (see module docstring); NCHW in and out."""
    nb.style = {"qkv": str(r.choice(["heads", "gather", "unbind"] if kind in ("levit", "poolmixer")
                                    else ["gather", "unbind", "unbind"])),
                "scale_q": bool(r.random() < 0.5)}
    if kind == "vit":
        x = _enter(nb, r, x, c_out, s)
        d = nb.shapes[x][1]
        gelu = "gelu_tanh" if r.random() < 0.15 else "gelu"
        return nb.vit_block(x, _heads(r, d), float(r.choice([2.0, 3.0, 4.0, 4.0])), int(r.integers(1, 3)),
                            decomposed=bool(r.random() < 0.3), gelu=gelu)
    if kind == "window":
        _, c, h, w = nb.shapes[x]
        if s == 2 and h % 2 == 0 and c_out == 2 * c and r.random() < 0.6:
            x = nb.patch_merge(x)  # Swin's own downsampling
        x = _enter(nb, r, x, c_out, 1 if nb.shapes[x][2] < h else s, max_tokens=4096)
        h = nb.shapes[x][2]
        win = next((w for w in (7, 4, 8, 2) if h % w == 0 and h > w), h)
        return nb.window_block(x, _heads(r, nb.shapes[x][1], 16, 32), win, bool(r.random() < 0.5 and win < h))
    if kind == "convnext":
        c = nb.shapes[x][1]
        if s == 2:
            x = nb.convnext_down(x, c_out)
        elif c != c_out:
            x = nb.conv_act(x, c_out, 1, a="none")
        return nb.convnext_block(x, int(r.choice([7, 7, 7, 9, 5, 3])), float(r.choice([4.0, 4.0, 3.0, 2.0])))
    if kind == "mobilevit":
        c = nb.shapes[x][1]
        x = nb.mbconv(x, c_out, 3, s, c * int(r.choice([2, 4])), "swish") if s == 2 or c != c_out else x
        if nb.shapes[x][2] % 2 or nb.shapes[x][2] * nb.shapes[x][3] > 4 * MAX_TOKENS:
            return x
        d = int(r.choice([64, 80, 96, 120, 144, 192, 240]))
        return nb.mobilevit_block(x, d, _heads(r, d, 16, 64), int(r.integers(1, 4)))
    if kind == "poolmixer":
        c = nb.shapes[x][1]
        if s == 2 or c != c_out:
            x = nb.conv_act(x, c_out, 3, s, a="relu")
        if nb.shapes[x][2] * nb.shapes[x][3] <= MAX_TOKENS // 4 and r.random() < 0.3:  # the last, 3D stage
            nb.style["qkv"] = "heads"
            return nb.vit_block(x, _heads(r, nb.shapes[x][1], 16, 64), 4.0, 1)
        return nb.poolmixer_block(x, float(r.choice([4.0, 4.0, 3.0])))
    # levit
    _, c, h, w = nb.shapes[x]
    if s == 2 and h % 2 == 0 and (h // 2) * (w // 2) <= MAX_TOKENS and r.random() < 0.5:
        t = nb.subsample(nb.to_tokens(x), h, w)  # shrinking: strided slices of the token map
        x = nb.from_tokens(nb.act(nb.linear_bn(t, c_out), "hswish"), h // 2, w // 2)
    elif s == 2 or c != c_out or h * w > MAX_TOKENS:
        x = _enter(nb, r, x, c_out, s)
        x = nb.act(x, "hswish")
    key_dim = int(r.choice([16, 32]))
    return nb.levit_block(x, _heads(r, nb.shapes[x][1], 16, 64), key_dim)
