"""Cost sources that predict: a fitted cost model, a kernel predictor, and shipped assets
(see :mod:`hwnas.cost_models.source` for the contract).

Why a model says what it predicts: ``hwnas fit-cost`` writes the target and unit into the
model's manifest, so a latency model asked for energy is refused instead of having its
milliseconds reported as millijoules. A model folder whose manifest does not say is taken
as the metric asked for, with a warning naming it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from hwnas.cost_models.source import TARGETS, CostSource, SourceRequest, target_of
from hwnas.errors import ConfigError, CostModelError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.registry import register

log = logging.getLogger(__name__)


def _model_target(manifest: dict[str, Any]) -> str | None:
    training = manifest.get("training") or {}
    return target_of(str(training.get("target") or ""), str(training.get("unit") or ""))


def _model_device(manifest: dict[str, Any]) -> str:
    dev = manifest.get("device")
    if isinstance(dev, dict):
        return str(dev.get("label") or dev.get("name") or "")
    return str(dev or "")


@register("cost_source", "model")
class ModelSource(CostSource):
    """A fitted cost model (``hwnas fit-cost`` folder): networks, and primitives as one-node networks."""

    def __init__(self, model: Any, *, where: str, target: str | None = None, device: str | None = None,
                 assume: str = "latency") -> None:
        self.model, self.where = model, where
        manifest = getattr(model, "manifest_", None) or {}
        found = target or _model_target(manifest)
        if found is None:
            log.warning("%s: the model's manifest does not say whether it predicts latency or energy; taking it "
                        "as %s (%s)", where, assume, TARGETS.get(assume, "?"))
        self._set_target(found or assume)
        self.device = device or _model_device(manifest) or "the device it was fitted on"
        self.space = (manifest.get("training") or {}).get("space")
        self.estimator = f"{getattr(model, 'registry_name', type(model).__name__)} prediction"

    def to(self, device: Any) -> "ModelSource":
        """Move a torch cost model to where the search runs (no-op for the others)."""
        if callable(getattr(self.model, "to", None)):
            self.model.to(device)
        return self

    def network_costs(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        try:
            return np.asarray(self.model.predict(list(networks)), dtype=float).reshape(-1)
        except CostModelError as exc:
            raise CostModelError(f"{self.where}: {exc}") from None

    def item_costs(self, items: Sequence[Primitive]) -> np.ndarray:
        """Each primitive predicted as a one-node network; the first one refused is named."""
        nets = [NetworkSpec.chain((p.c_in, p.h, p.w), [p]) for p in items]
        try:
            return np.asarray(self.model.predict(nets), dtype=float).reshape(-1)
        except CostModelError:
            for p, n in zip(items, nets):
                try:
                    self.model.predict([n])
                except CostModelError as exc:
                    raise CostModelError(f"{self.where} has no cost for primitive {p.key!r} (op {p.op}) "
                                         f"({exc})") from None
            raise

    def check_space(self, space: Any) -> None:
        """A model fit on another space's networks predicts nonsense for this one: refuse it."""
        mine = getattr(space, "registry_name", None)
        if self.space and mine and self.space != mine:
            raise ConfigError(f"model: {self.where} was fit on {self.space!r} networks, the search space is {mine!r}")


@register("cost_source", "kernel")
class KernelSource(ModelSource):
    """A kernel predictor (``fit-cost --model kernel``): any network, ONNX models, kernels.

    ``items`` says what a primitive is to it: ``blocks`` (default; a search-space block,
    priced as a one-node network split into kernels under the device's rules) or
    ``kernels`` (a detected kernel, priced by its family's predictor; a family without a
    predictor is priced as a copy of its data, the naive view the kernel job's advice uses).
    """

    def __init__(self, model: Any, *, where: str, items: Literal["blocks", "kernels"] = "blocks",
                 device: str | None = None) -> None:
        if getattr(model, "registry_name", "") != "kernel":
            raise CostModelError(f"{where}: a {getattr(model, 'registry_name', '?')!r} cost model is not a kernel "
                                 "predictor (hwnas fit-cost --model kernel)")
        dev = getattr(model, "device_", None) or {}
        super().__init__(model, where=where, target="latency", device=device or str(dev.get("name") or ""))
        self.items = items
        self.estimator = "kernel predictors composed over detected kernels" if items == "blocks" else \
            "per-kernel predictor (unknown family: a copy)"

    def item_costs(self, items: Sequence[Primitive]) -> np.ndarray:
        if self.items == "kernels":
            return np.asarray(self.model.predict_kernels(list(items), fallback=True), dtype=float)
        return super().item_costs(items)

    def predict_onnx(self, onnx_model: Any, *, naive: bool = True) -> Any:
        """Latency of an imported ONNX model with its per-kernel breakdown (``hwnas predict --onnx``)."""
        from hwnas.cost_models.kernel_predict import predict_onnx

        return predict_onnx(self.model, onnx_model, naive=naive)


def model_source(path: str | Path, *, where: str | None = None, assume: str = "latency",
                 target: str | None = None, device: str | None = None) -> ModelSource:
    """The source of a cost-model folder: a kernel predictor or any other fitted model."""
    from hwnas.cost_models.persistence import load_model

    model = load_model(path)
    label = where or str(path)
    if getattr(model, "registry_name", "") == "kernel":
        return KernelSource(model, where=label, device=device)
    return ModelSource(model, where=label, target=target, device=device, assume=assume)


@register("cost_source", "asset")
class AssetSource(CostSource):
    """A shipped ``asset:NAME`` (store, table or cost model), priced by the source of its kind.

    The asset's files are checked against its sha256 manifest first; what it holds (target,
    unit, device) comes from its manifest."""

    def __init__(self, ref: str, request: SourceRequest | None = None) -> None:
        from hwnas import assets

        req = request or SourceRequest()
        asset = assets.get(ref)
        self.asset, self.where = asset, ref
        meta = asset.meta
        self.inner = self._inner(asset.kind, assets.resolve(ref, asset.kind), req, meta)
        self.target, self.unit, self.device = self.inner.target, self.inner.unit, self.inner.device
        self.prices, self.additive = self.inner.prices, self.inner.additive
        self.space = meta.get("space")
        self.estimator = f"{self.inner.estimator}; asset {asset.name} v{asset.version}"

    def _inner(self, kind: str, path: Path, req: SourceRequest, meta: dict[str, Any]) -> CostSource:
        from hwnas.cost_models.source_tables import StoreSource, TableSource

        label = f"{self.where} ({kind})"
        if kind == "store":
            return StoreSource(path, req.device, req.backend, target=req.metric, estimator=req.estimator or None,
                               where=label)
        if kind == "table":
            if not req.column:
                raise ConfigError(f"{req.option}.column: a table source needs the value column, e.g. gold_6226_ms")
            return TableSource(path, req.column, req.key, target=target_of(req.column, meta.get("unit"))
                               or str(meta.get("target")), where=label, space=meta.get("space"))
        return model_source(path, where=label, target=target_of(str(meta.get("target") or ""), meta.get("unit")),
                            device=str(meta.get("device") or "") or None, assume=req.metric)

    def item_costs(self, items: Sequence[Primitive]) -> np.ndarray:
        return self.inner.cost(list(items))

    def network_costs(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        return self.inner.cost(list(networks))

    def cost_archs(self, space: Any, archs: Sequence[Any]) -> np.ndarray:
        return self.inner.cost_archs(space, archs)

    def check_space(self, space: Any) -> None:
        mine = getattr(space, "registry_name", None)
        if self.space and mine and self.space != mine:
            raise ConfigError(f"model: {self.where} holds {self.space!r} networks, the search space is {mine!r}")
        self.inner.check_space(space)

    def to(self, device: Any) -> "AssetSource":
        if callable(getattr(self.inner, "to", None)):
            self.inner.to(device)  # type: ignore[attr-defined]
        return self
