"""The cost-model interface (scikit-learn conventions) and the shared torch training loop.

Why scikit-learn conventions: hyperparameters in ``__init__`` only and learned state in
attributes ending in ``_`` make a model reproducible from its parameters and its
learned state alone, which is exactly what persistence writes (JSON + state_dict, no
pickle). Every learned model fits the *log* of the target, standardised, around an
offset (the log of the table sum when there is a table): a squared error in log space
is a relative error, which is what "within ±10%" measures, and the offset lets the
network learn only the correction to the naive sum.

Contract (checked for every registered model by the suite in ``testing/cost_model.py``):
``cls(**params)`` with every ``__init__`` argument readable back by
:meth:`CostModel.get_params` and left untouched by ``fit``; ``fit(networks, y, table)``
returns ``self`` and stores what it learns only in attributes ending in ``_``;
``predict`` returns a float ndarray with one finite value per network, the same for
the same seed and data; a model that learns from ``y`` beats predicting the training
mean on held-out networks (one that ignores ``y``, like ``lut``, must still rank them);
``needs_table`` models refuse to fit without a table; an unfitted model refuses to
predict with a :class:`~hwnas.errors.CostModelError`; ``save_model`` / ``load_model``
give back a model with identical predictions. :meth:`CostModel.example` gives the
parameters the suite fits it with.
"""
from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.cost_models.features import NUMERIC, Encoded, NodeFeatures, encode, ops_of
from hwnas.errors import CostModelError
from hwnas.primitives import NetworkSpec

log = logging.getLogger(__name__)


def check_xy(networks: Sequence[NetworkSpec], y: Any) -> np.ndarray:
    """Validated targets: one finite value > 0 per network (log targets need > 0)."""
    arr = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(arr) != len(networks):
        raise CostModelError(f"got {len(networks)} networks but {len(arr)} targets")
    if len(arr) < 2:
        raise CostModelError(f"need at least 2 networks to fit, got {len(arr)}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
    if len(bad):
        raise CostModelError(f"targets must be finite and > 0; network {int(bad[0])} has {arr[bad[0]]!r}")
    return arr


class CostModel:
    """Base of every cost model: ``fit(networks, y, table=None)`` then ``predict(networks)``."""

    #: True when the model cannot work without a primitive table.
    needs_table: bool = False
    #: Position in reports and in ``--model all`` (lower first; the naive sum is 0).
    report_order: int = 100
    #: Whether ``--model all`` fits this model (special-purpose models opt out).
    in_all: bool = True
    #: What ``fit`` learns from: measured ``networks``, or other data (``kernels``: a kernel job).
    fits_on: str = "networks"
    registry_name: str = "cost_model"

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """``__init__`` parameters for a quick fit in the contract suite (a few hundred
        synthetic networks on two cores). Default: the model's defaults."""
        return {}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "CostModel":
        """Rebuild from :meth:`get_params` as saved (a model whose parameters changed
        shape overrides this to read its older files)."""
        return cls(**dict(params))

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters, read back from the attributes named like ``__init__``'s arguments."""
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_table(self, table: Mapping[str, float] | None) -> dict[str, float] | None:
        if table is None and self.needs_table:
            raise CostModelError(f"cost model {self.registry_name!r} needs a primitive cost table "
                                 "(fit from a store, not from a whole-network dataset)")
        return {str(k): float(v) for k, v in table.items()} if table is not None else None

    def _check_fitted(self) -> None:
        if not hasattr(self, "nodes_"):
            raise CostModelError(f"{type(self).__name__} is not fitted; call fit() or load_model()")

    def fit(self, networks: Sequence[NetworkSpec], y: Any, table: Mapping[str, float] | None = None) -> "CostModel":
        raise NotImplementedError

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        raise NotImplementedError

    # -- persistence hooks (JSON state + optional tensors) ------------------------------
    def state(self) -> dict[str, Any]:
        """Learned, JSON-able state (table, vocabulary, coefficients)."""
        self._check_fitted()
        return {"ops": list(self.nodes_.ops), "table": self.nodes_.table}

    def tensors(self) -> dict[str, Any] | None:
        """Learned tensors (a torch state_dict), or None."""
        return None

    def restore(self, state: Mapping[str, Any], tensors: Mapping[str, Any] | None) -> None:
        self.nodes_ = NodeFeatures(state["ops"], state.get("table"))

    # -- helpers ----------------------------------------------------------------------------
    def table_sum(self, enc: Encoded) -> np.ndarray:
        """Per-network sum of table values (the naive LUT estimate)."""
        vals = self.nodes_.values[enc.ids]
        return np.add.reduceat(vals, enc.offsets[:-1]) if len(vals) else np.zeros(enc.n)


class TorchCostModel(CostModel):
    """Shared loop for the MLP, LSTM and GNN: log target, offset, Adam, cosine decay.

    Subclasses implement ``_build(enc)`` (create ``self.module_``), ``_inputs(enc)``
    (everything the forward needs for a whole batch) and ``_take(inputs, enc, idx)``
    (a minibatch as positional tensors for ``module_``).
    """

    uses_edges = False

    def __init__(self, hidden: int = 64, steps: int = 1500, batch_size: int = 64, lr: float = 3e-3,
                 weight_decay: float = 1e-4, seed: int = 0) -> None:
        self.hidden = hidden
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed

    @classmethod
    def example(cls, tmp_dir: Path) -> dict[str, Any]:
        """Few steps of a small network: enough to beat the mean on the suite's data."""
        return {"steps": 150, "hidden": 32}

    #: Where :meth:`predict` runs (``to``); fitting stays on the CPU.
    _device: str = "cpu"

    def to(self, device: Any) -> "TorchCostModel":
        """Run predictions on ``device`` (a search on a GPU keeps its cost model there)."""
        self._device = str(device)
        if getattr(self, "module_", None) is not None:
            self.module_.to(self._device)
        return self

    # -- to implement ---------------------------------------------------------------------
    def _build(self, enc: Encoded) -> None:
        raise NotImplementedError

    def _inputs(self, enc: Encoded) -> Any:
        raise NotImplementedError

    def _take(self, inputs: Any, enc: Encoded, idx: np.ndarray) -> tuple[Any, ...]:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def _offset(self, enc: Encoded) -> np.ndarray:
        if self.nodes_.has_table:
            return np.log(np.maximum(self.table_sum(enc), 1e-9))
        return np.zeros(enc.n)

    def node_stats(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """Mean/std of node rows over training occurrences; one-hot columns untouched."""
        rows = self.nodes_.matrix[enc.ids].astype(np.float64)
        mu, sd = np.zeros(self.nodes_.dim), np.ones(self.nodes_.dim)
        start = self.nodes_.dim - len(NUMERIC) - int(self.nodes_.has_table)
        mu[start:] = rows[:, start:].mean(0)
        sd[start:] = np.maximum(rows[:, start:].std(0), 1e-3)
        return mu.astype(np.float32), sd.astype(np.float32)

    def fit(self, networks: Sequence[NetworkSpec], y: Any, table: Mapping[str, float] | None = None) -> "TorchCostModel":
        import torch

        y = check_xy(networks, y)
        table = self._check_table(table)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.nodes_ = NodeFeatures(ops_of(networks), table)
        enc = encode(self.nodes_, networks, edges=self.uses_edges)
        t = np.log(y) - self._offset(enc)
        self.t_mu_, self.t_sd_ = float(t.mean()), float(max(t.std(), 1e-6))
        target = torch.tensor((t - self.t_mu_) / self.t_sd_, dtype=torch.float32)
        self._build(enc)
        inputs = self._inputs(enc)
        module = self.module_
        opt = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(self.steps, 1))
        # Early stopping on a seeded 15% of the training networks: with a few hundred
        # noisy measurements the networks otherwise fit the noise (seen on mbv2 at 224).
        order = rng.permutation(enc.n)
        n_val = int(round(0.15 * enc.n)) if enc.n >= 40 else 0
        val, train = np.sort(order[:n_val]), order[n_val:]
        val_inputs = self._take(inputs, enc, val) if n_val else None
        best, best_state = float("inf"), None
        bs = min(self.batch_size, len(train))
        perm, pos = rng.permutation(train), 0
        module.train()
        for step in range(self.steps):
            if pos + bs > len(train):
                perm, pos = rng.permutation(train), 0
            idx = perm[pos:pos + bs]
            pos += bs
            pred = module(*self._take(inputs, enc, idx))
            loss = torch.mean((pred - target[torch.from_numpy(idx)]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if val_inputs is not None and (step % 50 == 49 or step == self.steps - 1):
                module.eval()
                with torch.no_grad():
                    v = float(torch.mean((module(*val_inputs) - target[torch.from_numpy(val)]) ** 2))
                module.train()
                if v < best:
                    best, best_state = v, {k: t.detach().clone() for k, t in module.state_dict().items()}
            if step % 500 == 0:
                log.debug("%s step %d loss %.4f", self.registry_name, step, loss.item())
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        self.n_train_ = enc.n
        return self

    def predict(self, networks: Sequence[NetworkSpec], chunk: int = 4096) -> np.ndarray:
        import torch

        self._check_fitted()
        if not len(networks):
            return np.zeros(0)
        enc = encode(self.nodes_, networks, edges=self.uses_edges)
        inputs = self._inputs(enc)
        out = np.empty(enc.n)
        with torch.inference_mode():
            for s in range(0, enc.n, chunk):
                idx = np.arange(s, min(s + chunk, enc.n))
                args = [a.to(self._device) if hasattr(a, "to") else a for a in self._take(inputs, enc, idx)]
                out[idx] = self.module_(*args).double().cpu().numpy()
        return np.exp(self._offset(enc) + self.t_mu_ + self.t_sd_ * out)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "t_mu": self.t_mu_, "t_sd": self.t_sd_, "n_train": self.n_train_,
                **self._extra_state()}

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def tensors(self) -> dict[str, Any]:
        return self.module_.state_dict()

    def restore(self, state: Mapping[str, Any], tensors: Mapping[str, Any] | None) -> None:
        super().restore(state, tensors)
        self.t_mu_, self.t_sd_, self.n_train_ = float(state["t_mu"]), float(state["t_sd"]), int(state["n_train"])
        self._restore_extra(state)
        self._build(None)
        if tensors is None:
            raise CostModelError(f"{self.registry_name}: model file has no weights")
        try:
            self.module_.load_state_dict(dict(tensors))
        except (RuntimeError, KeyError) as exc:
            raise CostModelError(f"{self.registry_name}: weights do not match the model ({exc})") from None
        self.module_.to(self._device).eval()

    def _restore_extra(self, state: Mapping[str, Any]) -> None:
        pass


def mlp_head(d_in: int, hidden: int, d_out: int = 1) -> Any:
    import torch.nn as nn

    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, d_out))
