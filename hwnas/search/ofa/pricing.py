"""How specialisation prices a candidate subnet under a device's cost source.

The evolutionary search prices thousands of subnets per target, so a price must cost
microseconds. Sources differ in what they hold:

* a **profiled store** (``store=...`` or an ``asset:`` store) holds each primitive of the
  space measured alone, and usually some whole networks measured end to end. A network's
  lookup-table sum (LUT) is cheap but biased: every primitive timed alone pays the
  runtime's per-call overhead that a whole network pays once, so on a small CPU network
  the LUT sum is about twice the end-to-end time. :class:`StorePricing` therefore maps the
  LUT sum onto the store's own whole-network rows (``a + b * lut`` or ``a + b * lut + c *
  nodes``, whichever predicts those rows better leave-one-out) and answers the measured
  value itself for a network the store measured whole. Nothing is fitted on anything but
  the store, and the leave-one-out relative error is reported (a search margin basis).
* a **kernel predictor** prices any network by exporting it to ONNX and detecting its
  kernels: far too slow for thousands of candidates. :class:`TablePricing` prices each
  primitive of the space ONCE through it (a block as a one-node network) into a table and
  sums per candidate; each one-node price carries the predictor's per-network overhead, so
  the sum is mapped onto the predictor's own whole-network prices of a few sampled subnets
  (``a + b * sum + c * nodes``, the same leave-one-out choice of law as for a store).
* every other source (a fitted cost model, a table) prices whole networks itself
  (:class:`SourcePricing`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.cost_models.source import CostSource
from hwnas.cost_models.source_tables import StoreSource
from hwnas.errors import CostModelError
from hwnas.search.spaces.base import Arch, SearchSpace

#: fewest whole-network rows a calibration is fitted on (fewer: the raw LUT sum)
MIN_ROWS = 4


@dataclass(frozen=True)
class Calibration:
    """``value = coef . [1, lut, nodes]`` (``c`` is 0 for the two-term law)."""

    coef: tuple[float, float, float]
    law: str
    rows: int
    loo_rel_rmse: float
    raw_rel_rmse: float

    def apply(self, lut: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        a, b, c = self.coef
        return np.maximum(a + b * lut + c * nodes, 0.0)


def _loo_rel_rmse(x: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out relative RMSE of least squares ``y ~ x`` (closed form via the hat matrix)."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    hat = np.einsum("ij,jk,ik->i", x, np.linalg.pinv(x.T @ x), x)
    loo = (y - x @ coef) / np.maximum(1.0 - hat, 1e-9)
    return float(np.sqrt(np.mean((loo / y) ** 2)))


def fit_calibration(lut: np.ndarray, nodes: np.ndarray, measured: np.ndarray) -> Calibration | None:
    """The law (two or three terms) that predicts the measured rows best leave-one-out;
    None with fewer than :data:`MIN_ROWS` rows."""
    n = len(measured)
    if n < MIN_ROWS:
        return None
    raw = float(np.sqrt(np.mean(((lut - measured) / measured) ** 2)))
    laws = {"a + b*lut": np.column_stack([np.ones(n), lut])}
    if n >= MIN_ROWS + 2 and np.ptp(nodes) > 0:
        laws["a + b*lut + c*nodes"] = np.column_stack([np.ones(n), lut, nodes])
    scored = {name: _loo_rel_rmse(x, measured) for name, x in laws.items()}
    best = min(scored, key=scored.__getitem__)
    coef, *_ = np.linalg.lstsq(laws[best], measured, rcond=None)
    full = (*map(float, coef), 0.0)[:3]
    return Calibration((full[0], full[1], full[2]), best, n, scored[best], raw)


class SourcePricing:
    """Whole networks priced by the source itself (cost models, kernel predictors, tables)."""

    def __init__(self, src: CostSource, space: SearchSpace) -> None:
        self.src, self.space = src, space
        self.info: dict[str, Any] = {"pricing": f"whole networks by the source ({src.estimator})"}

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.src.cost_archs(self.space, list(archs))


class StorePricing:
    """A profiled store: measured whole networks as measured, the others as their
    primitives' LUT sum calibrated on the store's whole-network rows."""

    def __init__(self, src: StoreSource, space: SearchSpace) -> None:
        self.src, self.space = src, space
        self.measured = _network_rows(src)
        lut, nodes, y = [], [], []
        for net, value in self.measured.values():
            try:
                lut.append(float(src.cost([net])[0]))
            except CostModelError:
                continue  # a network of another space in the same store: not this calibration's
            nodes.append(len(net.nodes))
            y.append(value)
        self.calibration = fit_calibration(np.array(lut), np.array(nodes, dtype=float), np.array(y))
        cal = self.calibration
        self.info = {"pricing": "store LUT sum" + (f" calibrated on its whole-network rows ({cal.law})" if cal else
                                                   " (no whole-network rows to calibrate on: raw)"),
                     "network_rows": len(self.measured), "calibration_rows": len(y)}
        if cal is not None:
            self.info.update({"coef": list(cal.coef), "loo_rel_rmse": cal.loo_rel_rmse,
                              "raw_lut_rel_rmse": cal.raw_rel_rmse})
        self.hits = 0

    def lut(self, archs: Sequence[Arch]) -> tuple[list[Any], np.ndarray]:
        """The archs' networks and their raw LUT sums (a missing primitive is one line)."""
        nets = [self.space.to_network(a) for a in archs]
        return nets, self.src.cost(nets) if nets else np.zeros(0)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        nets, lut = self.lut(archs)
        cal = self.calibration
        out = cal.apply(lut, np.array([len(n.nodes) for n in nets], dtype=float)) if cal else lut.copy()
        for i, n in enumerate(nets):
            row = self.measured.get(n.hash)
            if row is not None:
                out[i] = row[1]
                self.hits += 1
        return out


class TablePricing:
    """Each primitive priced once through the source, summed per candidate, calibrated on
    the source's own whole-network prices of ``anchors`` sampled subnets."""

    def __init__(self, src: CostSource, space: SearchSpace, anchors: int = 24, seed: int = 0) -> None:
        self.src, self.space, self.table = src, space, {}  # type: ignore[var-annotated]
        rng = np.random.default_rng(seed + 11)
        archs = list(dict.fromkeys(space.canonical(space.sample(rng)) for _ in range(4 * anchors)))[:anchors]
        whole = np.asarray(src.cost_archs(space, archs), dtype=float)
        nets = [space.to_network(a) for a in archs]
        self.calibration = fit_calibration(self.sums(nets), np.array([len(n.nodes) for n in nets], dtype=float),
                                           whole)
        cal = self.calibration
        self.info: dict[str, Any] = {"pricing": "each primitive priced once by the source, summed" + (
            f", calibrated on its whole-network prices of {cal.rows} subnets ({cal.law})" if cal else " (raw)")}
        if cal is not None:
            self.info.update({"coef": list(cal.coef), "loo_rel_rmse_vs_source": cal.loo_rel_rmse,
                              "raw_sum_rel_rmse_vs_source": cal.raw_rel_rmse})

    def sums(self, nets: Sequence[Any]) -> np.ndarray:
        """Per network the sum of its primitives' table prices (new primitives priced in one batch)."""
        todo = list({p.key: p for n in nets for p in n.nodes if p.key not in self.table}.values())
        if todo:
            self.table.update(zip((p.key for p in todo), map(float, self.src.cost(todo))))
        return np.array([sum(self.table[p.key] for p in n.nodes) for n in nets])

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        nets = [self.space.to_network(a) for a in archs]
        total = self.sums(nets)
        cal = self.calibration
        return cal.apply(total, np.array([len(n.nodes) for n in nets], dtype=float)) if cal else total


def _network_rows(src: StoreSource) -> dict[str, tuple[Any, float]]:
    """Network hash -> (network, newest successful unflagged value of the source's
    column) among the store's whole-network rows of the source's device, backend and the
    settings its primitives were measured under."""
    from hwnas.store import Store

    with Store(src.path, readonly=True) as st:
        dev = st.find_device(src.device_ref)
        prim = st.query(device_id=dev["id"], backend=src.backend, kind="primitive", ok_only=True, latest=True)
        hashes = {r["settings_hash"] for r in prim}
        rows = st.query(device_id=dev["id"], backend=src.backend, kind="network", ok_only=True, latest=True,
                        exclude_flagged=True)
        rows = [r for r in rows if r["settings_hash"] in hashes and r.get(src.column) is not None]
        nets = {n.hash: n for n, _ in st.networks()} if rows else {}
    return {r["target"]: (nets[r["target"]], float(r[src.column])) for r in rows if r["target"] in nets}


def arch_pricing(src: CostSource, space: SearchSpace) -> SourcePricing | StorePricing | TablePricing:
    """The pricing of ``src`` for ``space``'s architectures (a store's own, a kernel
    predictor's table, or the source's)."""
    inner = getattr(src, "inner", src)  # an asset: store prices as a store
    if isinstance(inner, StoreSource):
        return StorePricing(inner, space)
    if getattr(inner, "registry_name", "") == "kernel" and "items" in src.prices:
        return TablePricing(src, space)
    return SourcePricing(src, space)
