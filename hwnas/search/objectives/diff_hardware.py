"""Differentiable hardware objective ``diff_hardware``: expected latency (or energy) of an
architecture distribution, as a loss term whose gradient reaches the architecture logits.

The expected cost is ``sum over the space's cost terms of weight * scale * cost(primitive)``
(:meth:`~hwnas.search.spaces.base.SearchSpace.cost_terms`): for a block-wise space the
FBNet lookup-table latency ``sum_l sum_i w_li LAT(b_li)``, for a cell space the same over
every edge of every cell. Per-primitive costs come from one source, as in the ``hardware``
objective, through the one read-only :class:`~hwnas.cost_models.source.CostSource` the
``hardware`` objective builds: a cost store's table (``store`` + ``device`` + ``backend``,
``asset:NAME`` too; the same ``estimator`` column, by default the robust ``latency_ms``)
or a fitted cost model folder (``model``; each primitive predicted as a one-node
network). So the loss optimises the number the report shows. A space primitive the
source lacks is refused when the objective is built, naming it.

Losses (``loss``):

* ``fbnet``:   CE * a * log(latency * scale) ** b (Wu et al., 2019; a = 0.2, b = 0.6);
* ``lagrange``: CE + lam * max(0, latency / budget - 1) (a penalty that acts only over budget).

As an ordinary objective it reports the derived architecture's predicted cost
(``latency_ms`` / ``energy_mj``, from the same source, as ``hardware`` does) with
reward = -cost.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch

from hwnas.config import opt
from hwnas.errors import ConfigError, CostModelError
from hwnas.primitives import Primitive
from hwnas.registry import register
from hwnas.search.objectives.base import Objective
from hwnas.search.objectives.hardware import PERF_NAMES, HardwareObjective
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import SearchSpace

log = logging.getLogger(__name__)


def item_costs(source: Any, prims: Sequence[Primitive], space: str, option: str) -> dict[str, float]:
    """Per-primitive costs of every primitive of the space from ``source`` (the same
    :class:`~hwnas.cost_models.source.CostSource`, estimator and numbers the ``hardware``
    objective reports); a primitive the source lacks is named with the space."""
    try:
        vals = source.cost(list(prims))
    except CostModelError as exc:
        raise ConfigError(f"objective.{option}: {exc} of space {space}; profile the space first "
                          f"(hwnas profile --space {space})") from None
    return {p.key: float(v) for p, v in zip(prims, vals)}


class CostTable:
    """The expected-cost function of a space: a constant plus one cost matrix per group."""

    def __init__(self, space: SearchSpace, costs: Mapping[str, float]) -> None:
        shapes = {g.name: g.shape for g in space.param_groups()}
        self.fixed = 0.0
        mats: dict[str, np.ndarray] = {}
        for t in space.cost_terms():
            c = t.scale * costs[t.primitive.key]
            if t.group is None:
                self.fixed += c
            else:
                mats.setdefault(t.group, np.zeros(shapes[t.group]))[t.row, t.choice] += c
        self.matrices = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in mats.items()}
        masks = {g.name: g.mask_array() for g in space.param_groups()}
        self.minimum = self.fixed + sum(float(np.where(masks[k], v, np.inf).min(axis=1).sum())
                                        for k, v in mats.items())

    def expected(self, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        out = torch.tensor(self.fixed)
        for name, mat in self.matrices.items():
            if name not in weights:
                raise ConfigError(f"objective: rollouts carry no weights for group {name!r}")
            out = out + (weights[name] * mat).sum()
        return out


@register("objective", "diff_hardware")
class DiffHardwareObjective(Objective):
    """Expected latency/energy of the architecture distribution (store table or cost model), as a loss."""

    @dataclass(frozen=True)
    class Options:
        metric: Literal["latency", "energy"] = opt("latency", help="latency (ms) or energy (mJ)")
        model: Path | None = opt(None, asset="cost_model",
                                 help="fitted cost model folder (or asset:NAME): per-primitive predictions")
        store: Path | None = opt(None, asset="store",
                                 help="cost store (or asset:NAME): per-primitive measurements (with device, backend)")
        device: str = opt("", help="device id, fingerprint or name in the store")
        backend: str = opt("", help="backend of the store measurements, e.g. onnxruntime")
        estimator: str = opt("", help="store column: latency_ms (default: the robust estimate), median_ms, mean_ms; "
                                      "energy_mj for energy")
        loss: Literal["fbnet", "lagrange"] = opt("fbnet", help="fbnet: CE*a*log(cost*scale)^b; lagrange: "
                                                              "CE + lam*max(0, cost/budget - 1)")
        a: float = opt(0.2, gt=0, help="fbnet loss: factor a")
        b: float = opt(0.6, min=0, help="fbnet loss: exponent b (the weight of the cost term)")
        scale: float = opt(1.0, gt=0, help="fbnet loss: cost unit multiplier, so that log(cost*scale) > 0")
        lam: float = opt(1.0, min=0, help="lagrange loss: weight of the over-budget penalty")
        budget: float = opt(0.0, min=0, help="lagrange loss: budget in ms or mJ")

        def check(self) -> None:
            sources = [n for n in ("model", "store") if getattr(self, n) is not None]
            if len(sources) != 1:
                raise ConfigError("model: give exactly one per-primitive cost source: model (cost model folder) or "
                                  f"store (+ device, backend); got {', '.join(sources) or 'none'}")
            if self.store is not None and not (self.device and self.backend):
                raise ConfigError("device: a store source needs device and backend")
            if self.estimator and self.store is None:
                raise ConfigError("estimator: chooses a store's column; a model or table has its own estimate")
            if self.loss == "lagrange" and self.budget <= 0:
                raise ConfigError("budget: the lagrange loss needs a budget > 0")

    def __init__(self, options: Any, *, space: SearchSpace, **_: Any) -> None:
        self.options = options
        self.space = space
        self.perf_name = PERF_NAMES[options.metric]
        self.perf_names = (self.perf_name,)
        self._table: CostTable | None = None
        self._derived = HardwareObjective(HardwareObjective.Options(
            metric=options.metric, model=options.model, store=options.store, device=options.device,
            backend=options.backend, estimator=options.estimator), space=space)

    def table(self) -> CostTable:
        """Per-primitive costs of every primitive the space uses (loaded once)."""
        if self._table is None:
            prims = {p.key: p for p in [*self.space.primitives(), *(t.primitive for t in self.space.cost_terms())]}
            option = "store" if self.options.store is not None else "model"
            costs = item_costs(self._derived.source(), list(prims.values()), self.space.name, option)
            self._table = CostTable(self.space, costs)
        return self._table

    def expected(self, rollout: Rollout) -> torch.Tensor:
        """Expected cost under the rollout's architecture weights (in the graph)."""
        if rollout.arch_weights is None:
            raise ConfigError("objective: diff_hardware needs rollouts with architecture weights "
                              "(a differentiable controller)")
        return self.table().expected(rollout.arch_weights.weights)

    def arch_loss(self, task_loss: torch.Tensor, rollout: Rollout) -> torch.Tensor:
        """The architecture loss: the task loss combined with the expected cost."""
        o = self.options
        cost = self.expected(rollout)
        if o.loss == "fbnet":
            if self.table().minimum * o.scale <= 1.0:
                raise ConfigError(f"objective.scale: the fbnet loss takes log(cost * scale), which must stay > 0; the "
                                  f"cheapest architecture costs {self.table().minimum:.4g} (x scale {o.scale:g}); "
                                  "raise scale (e.g. 1000 for microseconds)")
            return task_loss * o.a * torch.log(cost * o.scale) ** o.b
        return task_loss + o.lam * torch.relu(cost / o.budget - 1.0)

    # -- Objective ------------------------------------------------------------------------
    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        return self._derived.perfs(rollouts)

    def cheap_perfs(self, rollouts: Sequence[Rollout]) -> list[dict[str, float]]:
        return self.perfs(rollouts)

    def reward(self, perfs: Mapping[str, float]) -> float:
        return -float(perfs[self.perf_name])

    def directions(self) -> dict[str, str]:
        return {self.perf_name: "min"}
