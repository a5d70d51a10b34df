"""``transfer``: a cost model for a new device from k measured networks and a multi-device base.

Why a cost model of its own (and not a script): the result of few-shot transfer must be
usable wherever a fitted model is — ``hwnas predict``, a search objective, ``hwnas test
--cost-model`` — so it is saved like any other model (JSON + ``state_dict``, sha256
manifest, no pickle). The folder carries the base's weights with it, so it predicts
standalone even if the base asset later changes; ``base`` records where it came from.
:func:`fit_transfer` is the one library call behind ``hwnas fit-cost --transfer-from``:
it adapts, measures the leave-one-out error on the k shots (the only honest estimate a
user with k measurements can get) and writes the folder.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.cost_models.adapt import MIN_SHOTS, adapt, loo_predictions, refine
from hwnas.cost_models.base import CostModel, check_xy
from hwnas.cost_models.data import DataRequest
from hwnas.cost_models.transfer import MultiDeviceModel
from hwnas.errors import CostModelError
from hwnas.primitives import NetworkSpec
from hwnas.registry import register

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaseRef:
    """A multi-device base: the folder to load it from, and the name it is recorded under
    (what the user gave, e.g. ``asset:nb201-base``, which the command line resolved to
    ``path``: this layer takes paths, never asset references)."""

    path: Path
    name: str

    @classmethod
    def of(cls, ref: BaseRef | str | Path) -> BaseRef:
        return ref if isinstance(ref, BaseRef) else cls(Path(ref), str(ref))


def load_base(ref: BaseRef | str | Path) -> tuple[MultiDeviceModel, dict[str, Any]]:
    """A multi-device base from its model folder, with its manifest."""
    from hwnas.cost_models.persistence import load_model

    ref = BaseRef.of(ref)
    model = load_model(ref.path)
    if not isinstance(model, MultiDeviceModel):
        raise CostModelError(f"{ref.name}: a {getattr(model, 'registry_name', type(model).__name__)!r} model, not a "
                             "multi-device base (use e.g. asset:nb201-base or a multi_device model folder)")
    return model, dict(getattr(model, "manifest_", {}) or {})


@register("cost_model", "transfer")
class TransferModel(CostModel):
    """Few-shot transfer: a robust mix of a multi-device base's source devices, from k shots,
    and (``refine``, the default) the base's last layer fine-tuned on them under a prior
    towards that mix (:func:`hwnas.cost_models.adapt.refine`; chosen by the nested
    validation of ``bench/transfer_inner.py``)."""

    report_order = 90
    in_all = False  # needs a base: hwnas fit-cost --transfer-from

    def __init__(self, base: str | None = None, refine: bool = True) -> None:
        self.base = base
        self.refine = refine

    @classmethod
    def from_base(cls, base: MultiDeviceModel, ref: str | None = None, refine: bool = True) -> "TransferModel":
        """An unfitted transfer model on an already loaded (or freshly fit) base."""
        model = cls(base=ref, refine=refine)
        model.base_ = base
        return model

    def _base(self) -> MultiDeviceModel:
        if not hasattr(self, "base_"):
            if self.base is None:
                raise CostModelError("transfer needs a base: a multi_device model folder (a shipped base's is "
                                     "hwnas.assets.resolve_path('asset:nb201-base'))")
            self.base_ = load_base(self.base)[0]
        return self.base_

    def fit(self, networks: Sequence[NetworkSpec], y: Any, table: Mapping[str, float] | None = None) -> "TransferModel":
        """Adapt to the measured ``networks`` (the k shots); ``table`` is unused (table-free)."""
        y = check_xy(networks, y)
        if len(y) < MIN_SHOTS:
            raise CostModelError(f"few-shot transfer needs at least {MIN_SHOTS} measured networks, got {len(y)}")
        base = self._base()
        base.check_networks(networks, "shot")
        Z, H = base.embed_hidden(networks)
        t = np.log(y)
        a = adapt(Z, t, base.devices_)
        self.w_, self.b_, self.weights_ = a.w, a.b, a.weights
        self.delta_, self.c_ = np.zeros(H.shape[1]), 0.0
        if self.refine:
            rf = refine(H, t, loo_predictions(Z, t, base.devices_))
            self.delta_, self.c_ = rf.delta, rf.c
            self.weights_.update({f"refine:{k}": v for k, v in rf.weights.items()})
        self.n_train_ = len(y)
        return self

    def predict_log(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        """Log latency: the mix of source outputs plus the fine-tuned part of the last layer."""
        self._check_fitted()
        Z, H = self.base_.embed_hidden(networks)
        return Z @ self.w_ + self.b_ + H @ self.delta_ + self.c_

    def _check_fitted(self) -> None:
        if not hasattr(self, "w_"):
            raise CostModelError("TransferModel is not fitted; call fit() or load_model()")

    def predict(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        self._check_fitted()
        if not len(networks):
            return np.zeros(0)
        return np.exp(self.predict_log(networks))

    def similar_devices(self, top: int = 3) -> list[tuple[str, float]]:
        """Source devices the new one was found to behave like, with their weights."""
        self._check_fitted()
        like = [(k.split(":", 1)[1], v) for k, v in self.weights_.items() if k.startswith("like:")]
        return sorted(like, key=lambda kv: -kv[1])[:top]

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"base_params": self.base_.get_params(), "base_state": self.base_.state(), "w": list(self.w_),
                "b": self.b_, "weights": self.weights_, "n_train": self.n_train_, "delta": list(self.delta_),
                "c": self.c_}

    def tensors(self) -> dict[str, Any]:
        self._check_fitted()
        return self.base_.tensors()

    def restore(self, state: Mapping[str, Any], tensors: Mapping[str, Any] | None) -> None:
        try:
            base = MultiDeviceModel.from_params(state["base_params"])
        except TypeError as exc:
            raise CostModelError(f"transfer: bad base parameters ({exc})") from None
        base.restore(state["base_state"], tensors)
        self.base_ = base
        self.w_, self.b_ = np.asarray(state["w"], dtype=np.float64), float(state["b"])
        if len(self.w_) != len(base.devices_):
            raise CostModelError(f"transfer: {len(self.w_)} weights for {len(base.devices_)} source devices")
        self.weights_ = {str(k): float(v) for k, v in dict(state.get("weights", {})).items()}
        width = len(base.modules_) * base._width()
        self.delta_ = np.asarray(state.get("delta", np.zeros(width)), dtype=np.float64)  # older files: mix only
        self.c_ = float(state.get("c", 0.0))
        if self.delta_.shape != (width,):
            raise CostModelError(f"transfer: {self.delta_.size} last-layer changes for a base of width {width}")
        self.n_train_ = int(state["n_train"])


def loo_report(model: TransferModel, networks: Sequence[NetworkSpec], y: np.ndarray) -> dict[str, Any]:
    """Leave-one-out error of the whole adaptation on the k shots."""
    from scipy.stats import kendalltau, spearmanr

    base = model.base_
    Z, H = base.embed_hidden(networks)
    pred = np.exp(loo_predictions(Z, np.log(y), base.devices_, H=H if model.refine else None))
    rel = pred / y - 1.0
    out: dict[str, Any] = {"k": int(len(y)), "mape": float(np.mean(np.abs(rel))),
                           "rel_rmse": float(np.sqrt(np.mean(rel ** 2))),
                           "within_10": float(np.mean(np.abs(rel) <= 0.10)),
                           "max_rel_error": float(np.max(np.abs(rel)))}
    if len(y) >= 3 and np.ptp(y) > 0:
        out["spearman"] = float(spearmanr(y, pred).statistic)
        out["kendall_tau"] = float(kendalltau(y, pred).statistic)
    return out


def fit_transfer(base_ref: BaseRef | str | Path, networks: Sequence[NetworkSpec], y: Any, *, out: str | Path | None = None,
                 space: str | None = None, summary: Mapping[str, Any] | None = None,
                 device: Any = None, unit: str = "ms") -> dict[str, Any]:
    """Adapt the base to k measured networks, report leave-one-out error, write the folder."""
    from hwnas.cost_models.persistence import save_model

    base_ref = BaseRef.of(base_ref)
    base, manifest = load_base(base_ref)
    base_space = (manifest.get("training") or {}).get("space")
    if space and base_space and space != base_space:
        raise CostModelError(f"{base_ref.name}: the base was fit on the {base_space!r} space, the shots are {space!r} "
                             "networks")
    y = check_xy(networks, y)
    model = TransferModel.from_base(base, base_ref.name).fit(networks, y)
    loo = loo_report(model, networks, y)
    report: dict[str, Any] = {"base": base_ref.name, "space": space or base_space, "shots": int(len(y)),
                              "unit": unit, "loo": loo, "similar_devices": model.similar_devices(),
                              "data": dict(summary or {})}
    if out is not None:
        save_model(model, out, {"device": device, "training": {**dict(summary or {}), "space": space or base_space,
                                                               "unit": unit, "transfer_from": base_ref.name,
                                                               "shots": int(len(y)), "loo": loo}})
        report["out"] = str(out)
    log.info("transfer from %s: %d shots, LOO MAPE %.3f", base_ref.name, len(y), loo["mape"])
    return report


def transfer_from(base_ref: BaseRef | str | Path, shots: DataRequest, *, out: str | Path | None = None) -> dict[str, Any]:
    """``hwnas fit-cost --transfer-from``: read the k shots (a whole-network CSV, whose
    space defaults to the base's, or the network measurements of one device in a store)
    and run :func:`fit_transfer`."""
    from hwnas.cost_models import data as cdata
    from hwnas.errors import ConfigError

    dataset, target, space, store = shots.dataset, shots.target, shots.space, shots.store
    device, backend = shots.device, shots.backend
    if (dataset is None) == (store is None):
        raise ConfigError("transfer: give the k measured networks as dataset (CSV) + target, or store + device "
                          "+ backend")
    if dataset is not None:
        if not target:
            raise ConfigError("transfer: a dataset needs the target column (e.g. my_device_ms)")
        if space is None:
            space = (load_base(base_ref)[1].get("training") or {}).get("space")
            if not space:
                raise ConfigError(f"transfer: {BaseRef.of(base_ref).name} does not record its search space; give the space")
        d = cdata.from_csv(dataset, space, target, min_value=shots.min_value, space_options=shots.space_options)
    else:
        if not device or not backend:
            raise ConfigError("transfer: a store needs device and backend")
        from hwnas.store import Store

        with Store(store, create=False) as st:
            d = cdata.from_store(st, device, backend, target or "latency", with_table=False, min_networks=1)
    return fit_transfer(base_ref, d.networks, d.y, out=out, space=space, summary=d.summary, device=d.device,
                        unit=d.unit)
