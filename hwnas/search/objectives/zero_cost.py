"""Zero-cost proxies: scores of an *untrained* network that rank architectures.

Training is what makes NAS expensive; a proxy computed from one batch at
initialisation (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021;
Mellor et al., "Neural Architecture Search without Training", 2021) costs one forward
and backward pass, so it can be a cheap reward (objective ``synflow`` with the
``predictor`` evaluator) or the warm start of the predictor controller. Each proxy is
its own objective, with one perf of the same name (maximised):

* ``synflow`` - sum of |w * dR/dw| over conv / linear weights, where R is the sum of
  the outputs of the network with |weights| in double precision on an all-ones input
  (BatchNorm at its initial, identity statistics): needs no data. Reported as its
  natural log (the raw value spans hundreds of orders of magnitude).
* ``snip`` - sum of |w * dL/dw| (cross-entropy on the batch).
* ``grad_norm`` - sum over conv / linear weights of the L2 norm of dL/dw.
* ``jacob_cov`` - minus sum of log(v + k) + 1/(v + k) over the eigenvalues v of the
  correlation matrix of the input Jacobians of the batch (k = 1e-5); higher means the
  network tells the inputs apart. A network whose output ignores its input has no
  defined correlation and scores ``FLOOR``.

The network is the space's NetworkSpec built with the profilers' builders, its weights
re-drawn with PyTorch's default initialisation from a seed derived from
(``init_seed``, architecture string), so a score never depends on evaluation order.
The batch is the first training batch of the run's dataset when it has one (shuffled
with the run's seed), else seeded Gaussian noise with random labels.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import SearchSpace

#: Score given when a proxy is undefined for a network (e.g. its output ignores the input).
FLOOR = -1e8


def init_network(space: SearchSpace, arch: Any, seed: int) -> Any:
    """The network of ``arch`` with PyTorch default initialisation drawn from ``seed``."""
    import torch

    from hwnas.nn.builders import build_network

    model = build_network(space.to_network(arch))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    return model


def weights(model: Any) -> list[Any]:
    """Weights of the conv and linear layers (the layers the proxies score)."""
    from torch import nn

    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def arch_seed(base: int, arch_str: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{base}:{arch_str}".encode()).digest()[:4], "little")


class ZeroCostObjective(Objective):
    """Base of the proxies: caching, the batch, the network; subclasses define :meth:`score`."""

    #: Marks proxies for the predictor's warm start and the benchmarks.
    zero_cost = True
    #: Whether the proxy reads the batch (synflow does not).
    needs_batch = True

    @dataclass(frozen=True)
    class Options:
        batch_size: int = opt(64, min=2, help="images in the one batch the proxy reads")
        init_seed: int = opt(0, min=0, help="seed of the initial weights (mixed with the architecture string)")
        data: Literal["dataset", "synthetic"] = opt("dataset", help="the run's dataset (if any) or Gaussian noise")

    def __init__(self, options: Any, *, space: SearchSpace, dataset: Any = None, seed: int = 0, **_: Any) -> None:
        self.options = options
        self.space = space
        self.dataset = dataset
        self.seed = int(seed)
        self.perf_names = (self.registry_name,)
        self._cache: dict[str, float] = {}
        self._batch: tuple[Any, Any] | None = None

    def batch(self, input_shape: tuple[int, ...], num_classes: int) -> tuple[Any, Any]:
        """The one batch (x, y) every architecture is scored on."""
        import torch

        if self._batch is None:
            o = self.options
            if o.data == "dataset" and self.dataset is not None:
                x, y = next(iter(self.dataset.loader("train", batch_size=o.batch_size, shuffle=True, seed=self.seed)))
            else:
                g = torch.Generator().manual_seed(self.seed)
                x = torch.randn((o.batch_size, *input_shape), generator=g)
                y = torch.randint(num_classes, (o.batch_size,), generator=g)
            self._batch = (x, y % num_classes)
        return self._batch

    def score_arch(self, arch: Any) -> float:
        s = self.space.to_str(arch)
        if s not in self._cache:
            net = self.space.to_network(arch)
            model = init_network(self.space, arch, arch_seed(self.options.init_seed, s))
            xy = self.batch(net.input_shape, net.nodes[-1].c_out) if self.needs_batch else None
            v = float(self.score(model, xy, net.input_shape))
            self._cache[s] = v if math.isfinite(v) else FLOOR
        return self._cache[s]

    def score(self, model: Any, batch: tuple[Any, Any] | None, input_shape: tuple[int, ...]) -> float:
        raise NotImplementedError

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        return [{self.registry_name: self.score_arch(r.arch)} for r in rollouts]

    def reward(self, perfs: Mapping[str, float]) -> float:
        return float(perfs[self.registry_name])

    def directions(self) -> dict[str, str]:
        return {self.registry_name: "max"}


def _loss_backward(model: Any, batch: tuple[Any, Any]) -> None:
    import torch.nn.functional as F

    model.train()
    x, y = batch
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


@register("objective", "synflow")
class SynflowObjective(ZeroCostObjective):
    """Zero-cost proxy: log of the synaptic flow (data-free; Tanaka et al., 2020)."""

    needs_batch = False

    def score(self, model: Any, batch: tuple[Any, Any] | None, input_shape: tuple[int, ...]) -> float:
        import torch

        model = model.double().eval()  # BN at initial statistics: identity up to eps
        with torch.no_grad():
            for p in model.parameters():
                p.abs_()
        model.zero_grad(set_to_none=True)
        model(torch.ones((1, *input_shape), dtype=torch.float64)).sum().backward()
        total = sum(float((w * w.grad).abs().sum().detach()) for w in weights(model) if w.grad is not None)
        return math.log(total) if total > 0 else FLOOR


@register("objective", "snip")
class SnipObjective(ZeroCostObjective):
    """Zero-cost proxy: connection sensitivity sum |w * dL/dw| on one batch (Lee et al., 2019)."""

    def score(self, model: Any, batch: tuple[Any, Any] | None, input_shape: tuple[int, ...]) -> float:
        assert batch is not None
        _loss_backward(model, batch)
        return sum(float((w * w.grad).abs().sum().detach()) for w in weights(model) if w.grad is not None)


@register("objective", "grad_norm")
class GradNormObjective(ZeroCostObjective):
    """Zero-cost proxy: summed L2 norms of the weight gradients on one batch."""

    def score(self, model: Any, batch: tuple[Any, Any] | None, input_shape: tuple[int, ...]) -> float:
        assert batch is not None
        _loss_backward(model, batch)
        return sum(float(w.grad.norm()) for w in weights(model) if w.grad is not None)


@register("objective", "jacob_cov")
class JacobCovObjective(ZeroCostObjective):
    """Zero-cost proxy: how uncorrelated the input Jacobians of a batch are (Mellor et al., 2021)."""

    def score(self, model: Any, batch: tuple[Any, Any] | None, input_shape: tuple[int, ...]) -> float:
        import torch

        assert batch is not None
        model.train()
        x = batch[0].clone().requires_grad_(True)
        out = model(x)
        out.backward(torch.ones_like(out))
        jac = x.grad.reshape(len(x), -1).double().numpy()
        if not np.all(np.isfinite(jac)) or np.any(jac.std(1) == 0):
            return FLOOR
        v = np.linalg.eigvalsh(np.corrcoef(jac))
        k = 1e-5
        return float(-np.sum(np.log(np.clip(v, 0, None) + k) + 1.0 / (np.clip(v, 0, None) + k)))
