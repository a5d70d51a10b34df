"""The ``kernel`` cost model: per-family kernel predictors plus the device's rules, so any
model's latency is the composition of its kernels' predicted latencies.

Per family (convolution, depthwise, fully connected, elementwise, pooling, SE, reorder,
...) a gradient-boosted tree ensemble (scikit-learn) learns ``log(t / base)``, where
``base`` is a non-negative linear fit of time on multiply-adds and bytes moved: the base
carries extrapolation to kernels bigger than any sampled, the trees the runtime's
departures from it. A whole model is ``a + sum(max(b * t_k + c_f, 0))`` over its kernels,
``c_f`` a per-kernel cost of the kernel's family (kernel_overhead.py: one kernel can be
several executed nodes); ``a, b, c_f`` are fitted on the kernel job's random networks (end
to end against their kernels' profiled times), never on the networks being predicted.

A kernel's time also depends on the network it runs in: the same configuration is slower
in a bigger network (measured on the kernel job's random networks: caches, whose contents
the kernels before it evicted). Per family, a slope of log time on the network's context
is fitted among repeated configurations; the trees learn the time at a reference context,
and one network's kernels are rescaled to its own context
(:meth:`KernelCostModel.predict_network`). Without it, small models were over-priced.

The context is log10 of the bytes the whole network moves per inference (every kernel's
input, output and weights: what passes through the caches between two runs of a kernel),
and by default (``context_by: bytes-trees``) it is one more feature of every family's
trees, so its effect can depend on the kernel: a memory-bound classifier layer slows down
in a network that moves more data, a compute-bound transformer projection hardly at all,
and the effect levels off where the trees saw no bigger networks. ``bytes`` fits one slope
per family on it instead, and ``e2e`` one slope per family on log10 of the network's
end-to-end time (the first form, kept for models saved with it). Chosen on the kernel
job's own held-out random networks (the asset's 1,132, 3 folds by network): MAPE 7.6%,
73.5% within ±10% (``bytes-trees``) against 8.8%, 67.5% (``bytes``) and 9.1%, 64.8%
(``e2e``); a slope is one number per family, and the time is a proxy that ranks a mobile
CNN (a few ms, many MB of activations) as small and a compute-bound transformer as huge.

Saved like every cost model (persistence.py): parameters, rules and tree metadata as
JSON, the tree arrays as a ``state_dict`` — no pickle, and scikit-learn is not needed to
load or predict.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.cost_models.base import CostModel
from hwnas.cost_models.kernel_features import FEATURES, family, feature_matrix, work
from hwnas.cost_models.kernel_overhead import fit_kernel_costs, fit_overhead
from hwnas.cost_models.trees import TreeEnsemble
from hwnas.errors import CostModelError
from hwnas.nn.kernels.catalog import missing_kernel_hint
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register

log = logging.getLogger(__name__)

#: Families without a model of their own fall back to this one (a pure copy) in the
#: naive per-node view only; the kernel view refuses them by name.
COPY_FAMILY = "reorder"


@dataclass
class FamilyModel:
    """``base = max(a * macs + b * bytes + c, floor)``, times ``exp(trees(features))``."""

    coef: tuple[float, float, float]
    floor: float
    trees: TreeEnsemble | None
    n: int

    def predict(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        base = np.maximum(w @ np.asarray(self.coef), self.floor)
        return base * (np.exp(self.trees.predict(x)) if self.trees is not None else 1.0)


def _features(prims: Sequence[Primitive], ctx: np.ndarray | None) -> np.ndarray:
    """The trees' inputs: the kernel's features, then its network context when used."""
    x = feature_matrix(list(prims))
    return x if ctx is None else np.column_stack([x, np.asarray(ctx, dtype=float)])


def _work_matrix(prims: Sequence[Primitive]) -> np.ndarray:
    rows = [work(p) for p in prims]
    return np.asarray([[m, bi + bo + bw, 1.0] for m, bi, bo, bw in rows], dtype=np.float64).reshape(-1, 3)


#: Kernels a family needs (configurations seen in two or more networks) before its own
#: context slope counts fully; fewer pull it towards the slope of all families together.
CONTEXT_PRIOR = 200.0


#: How a network's context enters (see the module docstring): a feature of the trees, or
#: per-family slopes on the bytes or on the end-to-end time.
CONTEXTS = ("bytes-trees", "bytes", "e2e")


def network_context(network_ms: float) -> float:
    """``e2e`` context: log10 of the network's end-to-end time (ms). Fitted on the measured
    end to end, predicted from the composed prediction (a fixed point)."""
    return float(np.log10(max(float(network_ms), 1e-4)))


def bytes_context(prims: Sequence[Primitive]) -> float:
    """``bytes`` context: log10 of the bytes the network's kernels read and write per
    inference, weights included; known exactly before anything is predicted or measured."""
    total = sum(bi + bo + bw for _, bi, bo, bw in (work(p) for p in prims if p.op != "input"))
    return float(np.log10(max(float(total), 1.0)))


def fit_context(keys: Sequence[str], fams: Sequence[str], ctx: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Per family, how a kernel's time grows with its network's size: the slope of log
    time on the network context among occurrences of one and the same kernel
    configuration (demeaned per configuration, so the kernel's own size cancels out).

    Why: on the kernel job's random networks (285, this CPU) the same kernel took ~7% less
    than its average in networks under 1 ms and ~13% more in networks over 10 ms (caches:
    in a big network its weights and input were evicted by the kernels before it), so a
    predictor fitted on all of them over-prices every kernel of a small model."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    x = np.zeros(len(y))
    r = np.zeros(len(y))
    used = np.zeros(len(y), dtype=bool)
    for ix in groups.values():
        if len(ix) >= 2 and np.ptp(ctx[ix]) > 0:
            x[ix] = ctx[ix] - ctx[ix].mean()
            r[ix] = np.log(y[ix]) - np.log(y[ix]).mean()
            used[ix] = True
    fam = np.asarray(fams)

    def slope(m: np.ndarray) -> float:
        sxx = float(np.sum(x[m] ** 2))
        return float(np.sum(x[m] * r[m]) / sxx) if sxx > 0 else 0.0

    overall = slope(used)
    slopes = {}
    for f in sorted(set(fams)):
        m = used & (fam == f)
        n = float(m.sum())
        slopes[f] = (n * slope(m) + CONTEXT_PRIOR * overall) / (n + CONTEXT_PRIOR)
    return {"ref": float(np.mean(ctx)) if len(ctx) else 0.0, "overall": overall, "slopes": slopes,
            "n": int(used.sum()), "range": [float(np.min(ctx)), float(np.max(ctx))] if len(ctx) else [0.0, 0.0]}


def _fit_base(w: np.ndarray, y: np.ndarray) -> tuple[tuple[float, float, float], float]:
    """Non-negative least squares in relative terms (rows weighted by 1/y)."""
    from scipy.optimize import nnls

    scale = np.maximum(np.abs(w).max(0), 1e-12)
    a = (w / scale) / y[:, None]
    coef, _ = nnls(a, np.ones_like(y))
    coef = coef / scale
    return (float(coef[0]), float(coef[1]), float(coef[2])), float(max(np.percentile(y, 1) * 0.5, 1e-6))


@register("cost_model", "kernel")
class KernelCostModel(CostModel):
    """Kernel predictors (gradient-boosted trees per family) composed over detected kernels."""

    #: Fitted from kernel measurements (``hwnas profile --kernels``), not from networks.
    fits_on = "kernels"
    in_all = False  # `--model all` fits on networks; this model needs a kernel job's data

    def __init__(self, n_estimators: int = 400, max_depth: int = 5, learning_rate: float = 0.05,
                 min_samples: int = 15, seed: int = 0, context: bool = True, context_by: str = "bytes-trees") -> None:
        if context_by not in CONTEXTS:
            raise CostModelError(f"kernel model: context_by must be one of {', '.join(CONTEXTS)}, got {context_by!r}")
        self.n_estimators = n_estimators
        self.context = context  # fit and apply the network context (False: the ablation)
        self.context_by = context_by
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_samples = min_samples
        self.seed = seed

    # -- fitting ------------------------------------------------------------------------------
    def fit_family(self, prims: Sequence[Primitive], y: np.ndarray, ctx: np.ndarray | None = None) -> FamilyModel:
        """One family's base and trees; ``ctx`` (each kernel's network context) becomes the
        trees' last feature when given."""
        from sklearn.ensemble import GradientBoostingRegressor

        w = _work_matrix(prims)
        coef, floor = _fit_base(w, y)
        base = np.maximum(w @ np.asarray(coef), floor)
        trees = None
        if len(y) >= self.min_samples:
            est = GradientBoostingRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                            learning_rate=self.learning_rate, subsample=0.8, min_samples_leaf=3,
                                            random_state=self.seed)
            est.fit(_features(prims, ctx), np.log(y) - np.log(base))
            trees = TreeEnsemble.from_sklearn(est)
        return FamilyModel(coef, floor, trees, len(y))

    def fit_kernels(self, data: Any, idx: np.ndarray | None = None) -> "KernelCostModel":
        """Fit every family on the kernels of ``data``'s networks ``idx`` (all when None),
        then the end-to-end map on the same networks."""
        prims, y = data.kernels(idx)
        if not prims:
            raise CostModelError("kernel model: no kernel measurements to fit")
        nets = data.nets if idx is None else [data.nets[i] for i in idx]
        self.overhead_, self.kernel_cost_ = fit_kernel_costs(nets, fit_overhead(nets))
        ctx = np.asarray([network_context(n.e2e_ms) if self.context_by == "e2e" else bytes_context(n.kernels)
                          for n in nets for _ in n.kernels])
        fam_of = [family(p.op) for p in prims]
        trees_ctx = self.context and self.context_by == "bytes-trees"
        if trees_ctx:
            self.context_ = {"by": self.context_by, "ref": float(np.mean(ctx)),
                             "range": [float(np.min(ctx)), float(np.max(ctx))]}
        else:
            self.context_ = {**fit_context([p.key for p in prims], fam_of, ctx, y), "by": self.context_by} \
                if self.context else {}
            y = y * np.exp(-self._context_factor_log(fam_of, ctx))  # each kernel's time at the reference context
        fams: dict[str, list[int]] = {}
        for i, f in enumerate(fam_of):
            fams.setdefault(f, []).append(i)
        self.families_ = {f: self.fit_family([prims[i] for i in ix], y[ix], ctx[ix] if trees_ctx else None)
                          for f, ix in sorted(fams.items())}
        self.rules_ = data.rules.to_dict()
        self.device_ = dict(data.device or {})
        self.n_train_ = len(nets)
        self.nodes_ = None
        return self

    def fit(self, networks: Sequence[NetworkSpec], y: Any, table: Mapping[str, float] | None = None) -> "KernelCostModel":
        raise CostModelError("the kernel model is fitted from kernel measurements: run `hwnas profile --kernels`, "
                             "then `hwnas fit-cost --model kernel --store S --device D --backend onnxruntime`")

    # -- prediction ---------------------------------------------------------------------------
    def _check(self) -> None:
        if not hasattr(self, "families_"):
            raise CostModelError("KernelCostModel is not fitted; fit it from a store or load_model() it")

    def predict_kernels(self, prims: Sequence[Primitive], *, fallback: bool = False,
                        ctx: float | None = None) -> np.ndarray:
        """Predicted in-model time (ms) of each kernel; an unknown family is an error
        naming it (``fallback`` predicts it as a copy of its data, for the naive view).
        Kernels without a network (``ctx`` None) are priced at the reference context: the
        training networks' mean (a context-tree model) or the slopes' reference."""
        self._check()
        trees_ctx = self._trees_context()
        if trees_ctx and ctx is None:
            ctx = float(self.context_["ref"])
        out = np.zeros(len(prims))
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(prims):
            if p.op != "input":
                groups.setdefault(family(p.op), []).append(i)
        for fam, ix in groups.items():
            model = self.families_.get(fam)
            if model is None and fallback:
                model = self.families_.get(COPY_FAMILY)
            if model is None:
                known = ", ".join(sorted(self.families_))
                raise CostModelError(f"no kernel predictor for {prims[ix[0]].op!r} (kernel {prims[ix[0]].key!r}); "
                                     f"{missing_kernel_hint(prims[ix[0]].op)}; this predictor knows: {known}")
            sub = [prims[i] for i in ix]
            out[ix] = model.predict(_features(sub, np.full(len(sub), ctx) if trees_ctx else None), _work_matrix(sub))
        return out

    def _trees_context(self) -> bool:
        return (getattr(self, "context_", None) or {}).get("by") == "bytes-trees"

    def _context_factor_log(self, fams: Sequence[str], ctx: np.ndarray | float) -> np.ndarray:
        """log of each kernel's time in context ``ctx`` relative to the reference context."""
        c = getattr(self, "context_", None) or {}
        slopes = c.get("slopes", {})
        beta = np.asarray([float(slopes.get(f, c.get("overall", 0.0))) for f in fams])
        lo, hi = c.get("range", [-np.inf, np.inf])
        # no extrapolation beyond the network sizes the slopes were fitted on
        return beta * (np.clip(np.asarray(ctx, dtype=float), lo, hi) - float(c.get("ref", 0.0)))

    def predict_network(self, prims: Sequence[Primitive], *, fallback: bool = False) -> np.ndarray:
        """Predicted time (ms) of each kernel of ONE network, in that network's context: the
        context-free predictions rescaled to the bytes the network moves (``e2e``, models
        saved with it: to the time their composition implies, a few fixed-point steps)."""
        if self._trees_context():
            return self.predict_kernels(prims, fallback=fallback, ctx=bytes_context(prims))
        base = self.predict_kernels(prims, fallback=fallback)
        if not getattr(self, "context_", None) or not len(base):
            return base
        fams = [family(p.op) for p in prims if p.op != "input"]
        keep = np.asarray([p.op != "input" for p in prims])
        per = base.copy()
        if self.context_.get("by", "e2e") == "bytes":
            per[keep] = base[keep] * np.exp(self._context_factor_log(fams, bytes_context(prims)))
            return per
        for _ in range(3):
            per[keep] = base[keep] * np.exp(self._context_factor_log(fams, network_context(self.compose(per, prims))))
        return per

    def compose(self, kernel_ms: np.ndarray, prims: Sequence[Primitive] | None = None) -> float:
        """Whole-model latency from its kernels' predictions: a + sum(max(b * t + c_f, 0)),
        so no kernel counts negatively and the total is never below a >= 0. ``c_f`` is the
        kernel's family's per-kernel cost when ``prims`` are given and the model has one
        (:func:`fit_kernel_costs`), else the common ``c``; an ``input`` node costs nothing."""
        a, b, c = self.overhead_
        t = np.asarray(kernel_ms, dtype=float)
        costs = getattr(self, "kernel_cost_", None) or {}
        if prims is None or not costs:
            return float(a + np.sum(np.maximum(b * t + c, 0.0)))
        per = np.asarray([costs.get(family(p.op), c) for p in prims], dtype=float)
        keep = np.asarray([p.op != "input" for p in prims], dtype=bool)
        return float(a + np.sum(np.maximum(b * t[keep] + per[keep], 0.0)))

    def predict_graph(self, kg: Any, *, fallback: bool = False) -> tuple[float, np.ndarray]:
        """(total ms, per-kernel ms) of a detected KernelGraph."""
        prims = [k.prim for k in kg.kernels]
        try:
            per = self.predict_network(prims, fallback=fallback)
        except CostModelError as exc:
            node = _node_of(kg, str(exc))
            raise CostModelError(f"{kg.source}: {exc}{node}") from None
        return self.compose(per, prims), per

    def rules(self) -> Any:
        from hwnas.nn.kernels.rules import FusionRules

        self._check()
        return FusionRules.from_dict(self.rules_)

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        """Latency of search-space networks: each is built, exported to ONNX, split into
        kernels under this device's rules and composed (cached per network)."""
        from hwnas.cost_models.kernel_predict import predict_networks

        self._check()
        return predict_networks(self, networks)

    # -- persistence -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        self._check()
        fams = {f: {"coef": list(m.coef), "floor": m.floor, "n": m.n,
                    "trees": m.trees.meta() if m.trees is not None else None} for f, m in self.families_.items()}
        return {"features": list(FEATURES), "families": fams, "overhead": list(self.overhead_), "rules": self.rules_,
                "device": self.device_, "n_train": self.n_train_, "context": getattr(self, "context_", None),
                "kernel_cost": dict(getattr(self, "kernel_cost_", None) or {})}

    def tensors(self) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {}
        for f, m in self.families_.items():
            if m.trees is not None:
                for k, v in m.trees.arrays().items():
                    out[f"{f}.{k}"] = torch.from_numpy(np.ascontiguousarray(v))
        return out

    def restore(self, state: Mapping[str, Any], tensors: Mapping[str, Any] | None) -> None:
        if list(state.get("features", [])) != list(FEATURES):
            raise CostModelError("kernel model: saved with a different feature set; refit it with this hwnas")
        arrays = {k: v.numpy() for k, v in (tensors or {}).items()}
        fams = {}
        for f, rec in dict(state["families"]).items():
            trees = None
            if rec.get("trees") is not None:
                trees = TreeEnsemble.from_arrays({k.split(".", 1)[1]: v for k, v in arrays.items()
                                                  if k.split(".", 1)[0] == f}, rec["trees"])
            fams[f] = FamilyModel(tuple(rec["coef"]), float(rec["floor"]), trees, int(rec["n"]))  # type: ignore[arg-type]
        self.families_ = fams
        self.overhead_ = tuple(float(v) for v in state["overhead"])  # type: ignore[assignment]
        # saved before per-family kernel costs: none (every kernel costs the common c, as before)
        self.kernel_cost_ = {str(f): float(v) for f, v in dict(state.get("kernel_cost") or {}).items()}
        self.rules_ = dict(state["rules"])
        self.device_ = dict(state.get("device") or {})
        self.n_train_ = int(state.get("n_train", 0))
        self.context_ = dict(state.get("context") or {})  # saved before context slopes: none (factor 1)
        self.context_by = str(self.context_.get("by", "e2e"))  # saved before the bytes context: e2e
        self.nodes_ = None


def _node_of(kg: Any, message: str) -> str:
    """``; node NAME (OpType)`` of the first kernel a message names, for one-line errors."""
    for k in kg.kernels:
        if k.prim is not None and repr(k.prim.key) in message and k.nodes:
            n = kg.graph.nodes[k.nodes[0]]
            more = sum(1 for j in kg.kernels if j.prim is not None and j.prim.op == k.prim.op) - 1
            return f"; ONNX node {n.name!r} ({n.op_type})" + (f" and {more} more" if more > 0 else "")
    return ""
