"""The measured rules of one device and backend: which operator pairs fuse, and which
operators run in the runtime's blocked channel layout.

Why they are data, not code: which neighbours a runtime fuses and where it changes the
memory layout differs between runtimes, versions and CPUs (ONNX Runtime picks a channel
block of 8 on AVX2 and 16 on AVX-512, and fuses ``Clip`` into a convolution but not a
``LeakyRelu``). :mod:`hwnas.profilers.fusion` measures them on the device; they
are stored with the device in the cost store (table ``rules``, kind ``fusion``) and
travel inside every kernel predictor fitted from that store.

Layout modes, per operator category and for aligned (a multiple of the block) and
unaligned channel counts:

* ``transform``: the runtime has a blocked-layout kernel; it reorders its input into
  the blocked layout if needed and produces blocked output (convolutions, pools);
* ``agnostic``: runs in whatever layout its inputs share (elementwise ops);
* ``nchw``: needs the plain layout; a blocked input is reordered back first.

A third entry says what a ``transform`` operator does with a plain input: reorder it in
(``transform``: ONNX Runtime's max pool) or stay plain (``nchw``: its global average pool).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from hwnas.errors import CostModelError, StoreError

KIND = "fusion"
MODES = ("transform", "agnostic", "nchw")


@dataclass
class FusionRules:
    """Pairs ``left>right`` -> measurement and verdict; layout block and modes."""

    backend: str = "onnxruntime"
    share: float = 0.5
    pairs: dict[str, dict[str, Any]] = field(default_factory=dict)
    block: int = 0
    modes: dict[str, list[str]] = field(default_factory=dict)   # category -> [aligned, unaligned, from plain]
    conv: dict[str, Any] = field(default_factory=dict)          # variant -> runs blocked; quantum
    meta: dict[str, Any] = field(default_factory=dict)

    # -- queries ---------------------------------------------------------------------------
    def fuses(self, left: str, right: str, *, plain: bool = False) -> bool:
        """True when the measured pair ``left>right`` is one kernel: fused by its timing, or
        merged into one executed node by the runtime (unmeasured pairs: False). ``plain``:
        the pair as measured with the left side in the plain layout (``plain:`` keys; rules
        measured before those existed have none, so such a pair is not fused, as before)."""
        rec = self.pairs.get(f"{'plain:' if plain else ''}{left}>{right}")
        return bool(rec and (rec.get("fused") or rec.get("merged")))

    def merges(self, pattern: str) -> bool:
        """True when the runtime was measured to run a structural pattern (a decomposed
        layer norm, erf GELU, ...; see token_patterns.py) as fewer nodes (unmeasured: False)."""
        rec = self.pairs.get(f"pattern:{pattern}")
        return bool(rec and rec.get("merged"))

    def aligned(self, channels: int) -> bool:
        return self.block > 0 and channels % self.block == 0

    def mode(self, cat: str, channels: int, *, plain_input: bool = False) -> str:
        """Layout mode of a category for a tensor with ``channels`` channels; with
        ``plain_input``, what a blocked-capable op does when its input is plain (some
        reorder it in, some run plain)."""
        if self.block <= 0:
            return "nchw"
        entry = self.modes.get(cat)
        if not entry:
            return "nchw"
        m = entry[0] if self.aligned(channels) else entry[1]
        if m == "transform" and plain_input and len(entry) > 2:
            return entry[2]
        return m

    def conv_blocked(self, cat: str, c_in: int, c_out: int, groups: int) -> bool:
        """Whether a convolution runs in the blocked layout: a dense or depthwise one when
        its input is a few channels (read as is) or a multiple of the padding quantum; a
        grouped one when each group is whole blocks."""
        if self.block <= 0:
            return False
        q = int(self.conv.get("quantum", self.block))
        if cat == "conv":
            if c_in < self.block:
                return bool(self.conv.get("small_input_plain", False))
            return bool(self.conv.get("dense", False)) and c_in % q == 0
        if cat == "dwconv":
            key = "dw" if self.aligned(c_in) else "dw_padded"
            return bool(self.conv.get(key, False)) and c_in % q == 0
        if groups > 1 and c_out % c_in == 0 and c_in == groups:
            return bool(self.conv.get("dw_multiplier", False))
        per_group = c_in // max(groups, 1)
        return bool(self.conv.get("grouped_aligned" if self.aligned(per_group) else "grouped_unaligned", False))

    def conv_plain_input(self, c_in: int) -> bool:
        """A blocked convolution reads a plain-layout input directly (few input channels)."""
        return c_in < self.block and bool(self.conv.get("small_input_plain", False))

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "share": self.share, "pairs": self.pairs, "block": self.block,
                "modes": self.modes, "conv": self.conv, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FusionRules":
        try:
            return cls(str(data.get("backend", "onnxruntime")), float(data.get("share", 0.5)),
                       {str(k): dict(v) for k, v in dict(data.get("pairs") or {}).items()},
                       int(data.get("block", 0)), {str(k): list(v) for k, v in dict(data.get("modes") or {}).items()},
                       {str(k): v for k, v in dict(data.get("conv") or {}).items()},
                       dict(data.get("meta") or {}))
        except (TypeError, ValueError, AttributeError) as exc:
            raise CostModelError(f"fusion rules: malformed ({exc})") from None

    def fused_pairs(self) -> list[str]:
        return sorted(k for k, v in self.pairs.items() if v.get("fused") or v.get("merged"))

    @classmethod
    def none(cls, backend: str = "none") -> "FusionRules":
        """No fusion and no layouts: every ONNX node is its own kernel (the naive view)."""
        return cls(backend=backend)


def load_rules(store: Any, device: str | int, backend: str) -> FusionRules:
    """The newest measured rules for a device and backend in a store (one-line error if none)."""
    dev = store.find_device(device)
    rec = store.rules(dev["id"], backend, KIND)
    if rec is None:
        raise StoreError(f"{store.path}: no fusion rules for device {dev['name']!r} / {backend}; measure them "
                         "with `hwnas profile --fusion-rules` (or run `hwnas profile --kernels`)")
    return FusionRules.from_dict(rec["data"])
