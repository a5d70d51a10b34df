"""The multi-device base model: one network, one output per source device, an ensemble of seeds.

Why this base (HELP's hardware-embedding idea, made robust; numbers in
``bench/transfer.py``): a new device's latencies are, to a good approximation, a mix
of the behaviours of devices already measured (memory-bound like one GPU, compute-bound
like one CPU). An MLP on the table-free ``mlp`` features learns every source device at
once (standardised log latency per device, a masked loss where a device lacks a
network); its outputs for a network are that network's "source profile", and
:mod:`hwnas.cost_models.adapt` turns k measured networks of a new device into a
combination of them. Averaging the outputs of a few independently seeded members (an
ensemble over seeds) removes most of one member's idiosyncratic errors, which is what
the few-shot combination is most sensitive to.

Two encoders: ``mlp`` (the table-free ``mlp`` features, fast) and ``gnn`` (the ``gnn``
model's message passing over the NetworkSpec graph, one output per device): on FBNet the
graph reads per-layer choices that the flat encoding blurs (see docs/assets.md).

It is an ordinary cost model too: ``predict`` gives one source device's latency
(``device``, default the first), so a base asset can be used like any model folder.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.cost_models.base import CostModel, mlp_head
from hwnas.cost_models.features import NUMERIC, NodeFeatures, encode, graph_batch, ops_of
from hwnas.cost_models.mlp import MLPModel
from hwnas.errors import CostModelError
from hwnas.primitives import NetworkSpec
from hwnas.registry import register

log = logging.getLogger(__name__)

#: Encoders of the base and their default width.
ENCODERS: dict[str, int] = {"mlp": 128, "gnn": 48}


def device_families(columns: Sequence[str]) -> dict[str, list[str]]:
    """Group device columns into hardware families: columns that differ only in a trailing
    batch size (``1080ti_1_ms`` and ``1080ti_32_ms``) are one device.

    Why: a base that keeps ``1080ti_32`` while ``1080ti_1`` is "left out" has already seen
    that GPU, so a leave-one-out transfer figure must leave out the whole family. A prefix
    only one column has (``gold_6226_ms``) is no family: that column is its own.
    """
    import re

    stems = {c: re.sub(r"_\d+$", "", re.sub(r"_(ms|mj|j)$", "", c)) for c in columns}
    out: dict[str, list[str]] = {}
    for c in columns:
        shared = sum(1 for s in stems.values() if s == stems[c]) > 1
        out.setdefault(stems[c] if shared else re.sub(r"_(ms|mj|j)$", "", c), []).append(c)
    return out


@dataclass(frozen=True)
class FitSchedule:
    """How each member of the base is trained: AdamW for ``steps`` minibatches of
    ``batch_size`` under a cosine schedule from ``lr``. One parameter of the model, since
    these four only ever travel together."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-3

    def __post_init__(self) -> None:
        for name, low in (("steps", 0), ("batch_size", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise CostModelError(f"multi_device: schedule.{name} must be an integer >= {low}, got {v!r}")
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise CostModelError(f"multi_device: schedule.{name} must be a number >= 0, got {v!r}")


def _member(d_in: int, hidden: int, d_out: int) -> Any:
    import torch
    import torch.nn as nn

    class Member(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("x_mu", torch.zeros(d_in))
            self.register_buffer("x_sd", torch.ones(d_in))
            self.net = mlp_head(d_in, hidden, d_out)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net((x - self.x_mu) / self.x_sd)

    return Member()


def _targets(Y: Any, n: int) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
    if Y.ndim != 2 or Y.shape[0] != n:
        raise CostModelError(f"targets must be (networks, devices); got {Y.shape} for {n} networks")
    if n < 2:
        raise CostModelError(f"need at least 2 networks to fit, got {n}")
    bad = ~np.isnan(Y) & ~(np.isfinite(Y) & (Y > 0))
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise CostModelError(f"targets must be finite and > 0 (NaN for unmeasured); network {i} device {j} "
                             f"has {Y[i, j]!r}")
    if np.isnan(Y).all(0).any():
        raise CostModelError(f"device column {int(np.flatnonzero(np.isnan(Y).all(0))[0])} has no measurement")
    return Y


@register("cost_model", "multi_device")
class MultiDeviceModel(CostModel):
    """MLP or GNN ensemble with one output per source device; the base of few-shot transfer."""

    report_order = 80
    in_all = False  # a base for transfer, fit on many devices at once (make assets, bench/transfer.py)

    def __init__(self, encoder: str = "mlp", hidden: int | None = None, layers: int = 3, members: int = 3,
                 seed: int = 0, device: str | None = None, schedule: FitSchedule | Mapping[str, Any] | None = None) -> None:
        if encoder not in ENCODERS:
            raise CostModelError(f"multi_device: encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        self.encoder, self.hidden, self.layers = encoder, hidden, layers
        self.members, self.seed = members, seed
        self.device = device
        self.schedule = schedule
        self._fit_schedule()  # a bad schedule is refused here, not at fit time

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "MultiDeviceModel":
        """Rebuild from saved parameters; models saved before the schedule was one
        parameter (flat ``steps``, ``batch_size``, ``lr``, ``weight_decay``) load too."""
        params = dict(params)
        flat = {k: params.pop(k) for k in FitSchedule.__dataclass_fields__ if k in params}
        saved = params.get("schedule")
        if flat or isinstance(saved, Mapping):
            params["schedule"] = cls(schedule={**dict(saved or {}), **flat})._fit_schedule()
        return cls(**params)

    def _fit_schedule(self) -> FitSchedule:
        s = self.schedule
        if s is None or isinstance(s, FitSchedule):
            return s or FitSchedule()
        if not isinstance(s, Mapping):
            raise CostModelError(f"multi_device: schedule must be a FitSchedule or a mapping, got {s!r}")
        unknown = sorted(set(s) - set(FitSchedule.__dataclass_fields__))
        if unknown:
            raise CostModelError(f"multi_device: schedule: unknown key(s) {', '.join(unknown)}")
        return FitSchedule(**dict(s))

    # -- encoders ---------------------------------------------------------------------------
    def _width(self) -> int:
        return int(self.hidden or ENCODERS[self.encoder])

    def _feat(self, ops: Sequence[str], max_len: int) -> None:
        self.feat_ = MLPModel()
        self.feat_.nodes_ = NodeFeatures(ops, None)
        self.feat_.max_len_ = max_len
        self.nodes_ = self.feat_.nodes_

    def _prepare(self, networks: Sequence[NetworkSpec]) -> Any:
        """Whole-batch inputs: the feature matrix (mlp) or the encoded graphs (gnn)."""
        import torch

        enc = encode(self.feat_.nodes_, networks, edges=self.encoder == "gnn")
        return enc if self.encoder == "gnn" else torch.from_numpy(self.feat_.features(enc))

    def _take(self, prep: Any, idx: np.ndarray) -> tuple[Any, ...]:
        if self.encoder == "mlp":
            import torch

            return (prep[torch.from_numpy(np.asarray(idx))],)
        g = graph_batch(prep.select(idx), self.feat_.nodes_.matrix)
        return g.x, g.edge_index, g.batch, len(idx)

    def _new_member(self, d_out: int) -> Any:
        if self.encoder == "gnn":
            from hwnas.cost_models.gnn import _module

            return _module(self.feat_.nodes_.dim, self._width(), self.layers, d_out)
        return _member(self.d_in_, self._width(), d_out)

    def _normalise(self, mod: Any, prep: Any) -> None:
        """Input statistics of the training networks, as buffers saved with the weights."""
        import torch

        if self.encoder == "mlp":
            mod.x_mu.copy_(prep.mean(0))
            mod.x_sd.copy_(prep.std(0).clamp_min(1e-3))
            return
        rows = self.feat_.nodes_.matrix[prep.ids].astype(np.float64)
        start = self.feat_.nodes_.dim - len(NUMERIC)
        mu, sd = np.zeros(rows.shape[1]), np.ones(rows.shape[1])
        mu[start:], sd[start:] = rows[:, start:].mean(0), np.maximum(rows[:, start:].std(0), 1e-3)
        mod.n_mu.copy_(torch.from_numpy(mu.astype(np.float32)))
        mod.n_sd.copy_(torch.from_numpy(sd.astype(np.float32)))

    # -- fit ------------------------------------------------------------------------------
    def fit(self, networks: Sequence[NetworkSpec], y: Any, table: Mapping[str, float] | None = None,
            devices: Sequence[str] | None = None) -> "MultiDeviceModel":
        """``y``: (n,) or (n, D) latencies > 0, NaN where a device lacks a network. The
        features are table-free (devices do not share a primitive table), so ``table`` is unused."""
        import torch

        Y = _targets(y, len(networks))
        self.devices_ = [str(d) for d in (devices or [f"d{j}" for j in range(Y.shape[1])])]
        if len(self.devices_) != Y.shape[1] or len(set(self.devices_)) != len(self.devices_):
            raise CostModelError(f"devices must name each of the {Y.shape[1]} columns once, got {self.devices_}")
        nets = list(networks)
        self._feat(ops_of(nets), int(max(len(n.nodes) for n in nets)))
        prep = self._prepare(nets)
        self.d_in_ = int(prep.shape[1]) if self.encoder == "mlp" else self.feat_.nodes_.dim
        logy = np.log(Y)
        self.t_mu_ = np.nanmean(logy, 0)
        self.t_sd_ = np.maximum(np.nanstd(logy, 0), 1e-6)
        t = torch.from_numpy(((logy - self.t_mu_) / self.t_sd_).astype(np.float32))
        mask = (~torch.isnan(t)).float()
        t = torch.nan_to_num(t)
        self.modules_ = [self._train_member(prep, t, mask, self.seed * 1000 + m) for m in range(self.members)]
        self.n_train_ = len(nets)
        return self

    def _train_member(self, prep: Any, t: Any, mask: Any, seed: int) -> Any:
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        mod = self._new_member(t.shape[1])
        self._normalise(mod, prep)
        fs = self._fit_schedule()
        opt = torch.optim.AdamW(mod.parameters(), lr=fs.lr, weight_decay=fs.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(fs.steps, 1))
        n = t.shape[0]
        bs = min(fs.batch_size, n)
        mod.train()
        for step in range(fs.steps):
            idx = np.sort(rng.choice(n, bs, replace=False))
            m = mask[idx]
            loss = (((mod(*self._take(prep, idx)) - t[idx]) ** 2) * m).sum() / m.sum().clamp_min(1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step % 1000 == 0:
                log.debug("multi_device seed %d step %d loss %.4f", seed, step, loss.item())
        mod.eval()
        return mod

    # -- predict --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "modules_"):
            raise CostModelError("MultiDeviceModel is not fitted; call fit() or load_model()")

    def embed(self, networks: Sequence[NetworkSpec], chunk: int = 4096, members: Sequence[int] | None = None
              ) -> np.ndarray:
        """(n, D) standardised log latency of every source device, averaged over members
        (all, or the given member indices)."""
        import torch

        self._check_fitted()
        if not len(networks):
            return np.zeros((0, len(self.devices_)))
        mods = [self.modules_[i] for i in members] if members is not None else self.modules_
        prep = self._prepare(networks)
        out = np.zeros((len(networks), len(self.devices_)))
        with torch.inference_mode():
            for s in range(0, len(networks), chunk):
                args = self._take(prep, np.arange(s, min(s + chunk, len(networks))))
                out[s:s + chunk] = np.mean([m(*args).double().numpy() for m in mods], axis=0)
        return out

    def embed_hidden(self, networks: Sequence[NetworkSpec], chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """(Z, H): the member-averaged outputs of :meth:`embed` and H (n, members x width),
        every member's input to its last layer, divided by the number of members.

        Why H: every source output is a linear read-out of H (``Z = H @ W + c`` per member), so
        a new device's read-out ``H @ (W mix + delta)`` is the base's last layer fine-tuned
        (:func:`hwnas.cost_models.adapt.refine`); dividing by the members makes ``H @ delta``
        the ensemble mean of every member's fine-tuned output."""
        import torch

        self._check_fitted()
        D, M = len(self.devices_), len(self.modules_)
        if not len(networks):
            return np.zeros((0, D)), np.zeros((0, M * self._width()))
        prep = self._prepare(networks)
        Z, H = np.zeros((len(networks), D)), np.zeros((len(networks), M * self._width()))
        seen: list[Any] = []
        lasts = [[m for m in mod.modules() if isinstance(m, torch.nn.Linear)][-1] for mod in self.modules_]
        hooks = [lin.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0])) for lin in lasts]
        try:
            with torch.inference_mode():
                for s in range(0, len(networks), chunk):
                    args = self._take(prep, np.arange(s, min(s + chunk, len(networks))))
                    seen.clear()
                    Z[s:s + chunk] = np.mean([m(*args).double().numpy() for m in self.modules_], axis=0)
                    H[s:s + chunk] = np.concatenate([h.double().numpy() for h in seen], axis=1) / M
        finally:
            for h in hooks:
                h.remove()
        return Z, H

    def predict_device(self, networks: Sequence[NetworkSpec], device: str) -> np.ndarray:
        self._check_fitted()
        if device not in self.devices_:
            raise CostModelError(f"no source device {device!r}; devices: {', '.join(self.devices_)}")
        j = self.devices_.index(device)
        return np.exp(self.t_mu_[j] + self.t_sd_[j] * self.embed(networks)[:, j])

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        self._check_fitted()
        return self.predict_device(networks, self.device or self.devices_[0])

    def check_networks(self, networks: Sequence[NetworkSpec], what: str = "networks") -> None:
        """Refuse networks with ops the base never saw (another search space): their
        blocks would all fall in one 'other' column and give confident nonsense."""
        self._check_fitted()
        known = set(self.feat_.nodes_.ops)
        for i, net in enumerate(networks):
            extra = sorted({p.op for p in net.nodes} - known)
            if extra:
                raise CostModelError(f"{what} {i} is not a network of the base model's space (ops "
                                     f"{', '.join(extra)}); the base knows ops {', '.join(sorted(known))}")

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"ops": list(self.feat_.nodes_.ops), "max_len": self.feat_.max_len_, "d_in": self.d_in_,
                "devices": self.devices_, "t_mu": list(self.t_mu_), "t_sd": list(self.t_sd_),
                "n_members": len(self.modules_), "n_train": self.n_train_}

    def tensors(self) -> dict[str, Any]:
        self._check_fitted()
        return {f"m{i}.{k}": v for i, mod in enumerate(self.modules_) for k, v in mod.state_dict().items()}

    def restore(self, state: Mapping[str, Any], tensors: Mapping[str, Any] | None) -> None:
        self._feat(state["ops"], int(state["max_len"]))
        self.d_in_, self.devices_ = int(state["d_in"]), [str(d) for d in state["devices"]]
        self.t_mu_, self.t_sd_ = np.asarray(state["t_mu"], float), np.asarray(state["t_sd"], float)
        self.n_train_ = int(state.get("n_train", 0))
        if tensors is None:
            raise CostModelError("multi_device: model file has no weights")
        self.modules_ = []
        for i in range(int(state["n_members"])):
            mod = self._new_member(len(self.devices_))
            part = {k[len(f"m{i}."):]: v for k, v in tensors.items() if k.startswith(f"m{i}.")}
            try:
                mod.load_state_dict(part)
            except (RuntimeError, KeyError) as exc:
                raise CostModelError(f"multi_device: weights do not match the model ({exc})") from None
            mod.eval()
            self.modules_.append(mod)
