"""Speed calibration of a kernel predictor: this machine's speed now, from a probe.

A kernel predictor prices a model at the speed its machine had while the kernel job ran.
The speed probe (:mod:`hwnas.profilers.probe`) times a fixed set of random networks of the
kernel job's own kind here and now; the predictor prices the same networks; the median of
measured / predicted is the **speed factor** by which every prediction is scaled. Why the
median of a ratio over many networks: the predictor's error on any one random network is
~8% (held out), on the median of 32 about 1.5%, while the machine's speed moves by
several percent between sessions and hosts (see the probe's module).

The factor is only a speed: it scales every kernel alike, so a model's ranking and its
per-kernel shares do not change. A factor far from 1 (:data:`FAR`) is a sign that the
predictor was built on another kind of machine, which scaling does not repair.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.errors import CostModelError

#: A factor beyond 1 ± this says "another kind of machine": build a predictor for it.
FAR = 0.25


@dataclass(frozen=True)
class SpeedFactor:
    """measured / predicted over the probe's networks: the median, and its spread."""

    factor: float
    networks: int
    q25: float
    q75: float
    probe_wall_s: float
    when: str

    @property
    def far(self) -> bool:
        return abs(self.factor - 1.0) > FAR

    def line(self) -> str:
        return (f"speed probe: {self.networks} random networks measured in {self.probe_wall_s:.1f} s run "
                f"{self.factor:.3f}x the predictor's times (quartiles {self.q25:.3f}-{self.q75:.3f}); "
                f"predictions scaled by it" + ("; so far from 1 that this looks like another kind of machine: "
                                               "build a predictor here" if self.far else ""))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_predictions(model: Any, probe_onnx: Sequence[bytes]) -> np.ndarray:
    """The kernel predictor's end-to-end prediction (ms) of each probe network; NaN for a
    network with a kernel family the predictor has no model for (left out of the factor)."""
    from hwnas.nn.kernels import detect
    from hwnas.nn.onnx_graph import import_onnx

    rules = model.rules()
    out = np.full(len(probe_onnx), np.nan)
    for i, b in enumerate(probe_onnx):
        try:
            out[i] = model.predict_graph(detect(import_onnx(b, name="speed probe").graph, rules))[0]
        except CostModelError:
            continue
    return out


def speed_factor(measured_ms: Sequence[float], predicted_ms: Sequence[float], *, wall_s: float = 0.0,
                 when: str = "") -> SpeedFactor:
    """The median of measured / predicted (and its quartiles) over the probe's networks."""
    m = np.asarray(measured_ms, dtype=float)
    p = np.asarray(predicted_ms, dtype=float)
    if len(m) != len(p) or not len(m):
        raise CostModelError(f"speed factor: {len(m)} measured and {len(p)} predicted probe networks; "
                             "expected the same number, at least one")
    ok = np.isfinite(m) & np.isfinite(p) & (m > 0) & (p > 0)
    if ok.sum() < max(1, len(m) // 2):
        raise CostModelError(f"speed factor: only {int(ok.sum())} of {len(m)} probe networks have a measured and a "
                             "predicted time (the others have kernel families this predictor has no model for); "
                             "expected at least half")
    r = m[ok] / p[ok]
    return SpeedFactor(float(np.median(r)), int(ok.sum()), float(np.percentile(r, 25)), float(np.percentile(r, 75)),
                       float(wall_s), str(when))


def scaled(prediction: Any, factor: float) -> Any:
    """A kernel prediction (``kernel_predict.Prediction``) with every time times ``factor``
    (the shares unchanged)."""
    from dataclasses import replace

    kernels = [{**k, "ms": float(k["ms"]) * factor} for k in prediction.kernels]
    naive = None if prediction.naive_ms is None else float(prediction.naive_ms) * factor
    return replace(prediction, total_ms=float(prediction.total_ms) * factor, kernels=kernels, naive_ms=naive)
