"""The cost-source interface: the one read-only way anything prices items or networks.

Why one interface: the hardware objectives, the differentiable loss, ``hwnas predict`` and
the kernel job's advice each used to read hardware costs their own way, and meaning drifted
(one objective read a store's robust ``latency_ms``, the other its ``median_ms``; a latency
model reported its numbers as ``energy_mj`` when asked for energy). A :class:`CostSource`
says what it prices, so a consumer asking for another metric is refused by name, and every
consumer of one source gets the same numbers from the same estimator.

Contract (checked for every registered source by the suite in ``testing/cost_source.py``):

* ``target`` is ``latency`` or ``energy`` and ``unit`` its unit (``ms``, ``mJ``);
  ``device`` names the hardware the numbers are of; ``estimator`` says how one number is
  made (e.g. ``latency_ms`` — the timing protocol's robust estimate — or ``gnn
  prediction``); ``where`` is what the user gave (a path or ``asset:NAME``).
* ``prices`` is a non-empty subset of ``{"items", "networks"}``. ``cost(items)`` prices
  a sequence of :class:`~hwnas.primitives.Primitive` (per-primitive costs) and
  ``cost(networks)`` a sequence of :class:`~hwnas.primitives.NetworkSpec`; each returns a
  float ndarray, one finite value >= 0 per input, the same for the same input; a single
  Primitive or NetworkSpec gives a float. Asking for a kind the source does not price, or
  an item/network it has no cost for, raises a one-line
  :class:`~hwnas.errors.CostModelError` naming it.
* ``additive`` sources price a network as the sum of its nodes' item costs.
* :meth:`CostSource.require` refuses another metric than ``target`` with a one-line
  :class:`~hwnas.errors.ConfigError` naming the source and what it holds.
* Read-only: building and pricing never write to or create a file (stores are opened with
  SQLite's ``mode=ro``; ``asset:`` stores are materialised by the assets layer before).
"""
from __future__ import annotations

import abc
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, overload

import numpy as np

from hwnas.errors import ConfigError, CostModelError, HwnasError
from hwnas.primitives import NetworkSpec, Primitive

log = logging.getLogger(__name__)

#: target -> unit
TARGETS: dict[str, str] = {"latency": "ms", "energy": "mJ"}
#: what a source can price
KINDS: tuple[str, ...] = ("items", "networks")


def target_of(name: str | None, unit: str | None = None) -> str | None:
    """``latency`` / ``energy`` from a target name (``latency``, ``gold_6226_ms``,
    ``energy_mj``) or a unit (``ms``, ``mJ``); None when neither says."""
    n = (name or "").strip().lower()
    if n in TARGETS:
        return n
    if n.endswith("_ms") or n == "ms":
        return "latency"
    if n.endswith("_mj") or n == "mj":
        return "energy"
    u = (unit or "").strip().lower()
    if u == "ms":
        return "latency"
    if u == "mj":
        return "energy"
    return None


class CostSource(abc.ABC):
    """Prices items (primitives) and/or whole networks of one device, read-only."""

    #: ``latency`` or ``energy``
    target: str = "latency"
    #: ``ms`` or ``mJ``
    unit: str = "ms"
    #: the hardware the numbers are of
    device: str = ""
    #: how one number is made (column, statistic or model)
    estimator: str = ""
    #: what the user gave: a path or ``asset:NAME``
    where: str = ""
    #: what :meth:`cost` accepts: a subset of :data:`KINDS`
    prices: frozenset[str] = frozenset(KINDS)
    #: whether a network costs the sum of its nodes' item costs
    additive: bool = False

    # -- what implementations provide ------------------------------------------------------
    def item_costs(self, items: Sequence[Primitive]) -> np.ndarray:
        """Per-primitive costs (implement when ``"items"`` is in :attr:`prices`)."""
        raise CostModelError(f"{self.describe()} prices whole networks, not single primitives")

    def network_costs(self, networks: Sequence[NetworkSpec]) -> np.ndarray:
        """Whole-network costs (implement when ``"networks"`` is in :attr:`prices`)."""
        raise CostModelError(f"{self.describe()} prices single primitives, not whole networks")

    # -- the interface ---------------------------------------------------------------------
    @overload
    def cost(self, what: Primitive | NetworkSpec) -> float: ...

    @overload
    def cost(self, what: Sequence[Primitive] | Sequence[NetworkSpec]) -> np.ndarray: ...

    def cost(self, what: Any) -> Any:
        """Costs of a sequence of primitives or of networks (a float for a single one)."""
        if isinstance(what, (Primitive, NetworkSpec)):
            return float(self.cost([what])[0])
        seq = list(what)
        if not seq:
            return np.zeros(0)
        if all(isinstance(x, Primitive) for x in seq):
            out = self.item_costs(seq)
        elif all(isinstance(x, NetworkSpec) for x in seq):
            out = self.network_costs(seq)
        else:
            raise CostModelError(f"{self.describe()}: cost() takes primitives or networks, not a mix of "
                                 f"{', '.join(sorted({type(x).__name__ for x in seq}))}")
        return np.asarray(out, dtype=float).reshape(-1)

    def cost_archs(self, space: Any, archs: Sequence[Any]) -> np.ndarray:
        """Costs of a search space's architectures (their networks; tables override this to
        look architecture strings up without building networks)."""
        return self.cost([space.to_network(a) for a in archs])

    def check_space(self, space: Any) -> None:
        """Refuse a search space the source was not made for (default: accept any)."""

    def require(self, target: str, option: str = "metric") -> None:
        """Refuse to price ``target`` when the source holds another metric (one line)."""
        if target not in TARGETS:
            raise ConfigError(f"{option}: must be one of {', '.join(TARGETS)}, got {target!r}")
        if target != self.target:
            raise ConfigError(f"{option}: {self.where} holds {self.target} ({self.unit}) of {self.device or 'its device'}"
                              f" ({self.estimator}), not {target}; give a source of {target} "
                              f"({TARGETS[target]})")

    def describe(self) -> str:
        """``WHERE: TARGET in UNIT of DEVICE (ESTIMATOR)`` for messages and reports."""
        return f"{self.where}: {self.target} in {self.unit} of {self.device or '?'} ({self.estimator})"

    def summary(self) -> dict[str, Any]:
        """What the source is, as JSON values (reports)."""
        return {"source": self.where, "kind": getattr(self, "registry_name", type(self).__name__),
                "target": self.target, "unit": self.unit, "device": self.device, "estimator": self.estimator}

    def _set_target(self, target: str) -> None:
        if target not in TARGETS:
            raise ConfigError(f"metric: must be one of {', '.join(TARGETS)}, got {target!r}")
        self.target, self.unit = target, TARGETS[target]


@dataclass(frozen=True)
class SourceRequest:
    """What a user gave to name a cost source: exactly one of ``model``, ``store`` or
    ``table`` (each a path or ``asset:NAME``), with the options that source needs.

    ``metric`` is what the consumer wants priced: a store reads that metric, every other
    source must hold it (:meth:`CostSource.require`). ``estimator`` chooses a store
    column (default: the robust ``latency_ms``, or ``energy_mj``). ``option`` prefixes
    errors with where the request came from (``objective`` for a YAML section).
    """

    model: str | Path | None = None
    store: str | Path | None = None
    table: str | Path | None = None
    device: str = ""
    backend: str = ""
    column: str = ""
    key: str = "arch_str"
    metric: str = "latency"
    estimator: str = ""
    option: str = "objective"

    @classmethod
    def of(cls, options: Any, option: str = "objective") -> "SourceRequest":
        """The request of an objective's options (fields of the same names)."""
        fields = ("model", "store", "table", "device", "backend", "column", "key", "metric", "estimator")
        return cls(**{f: getattr(options, f) for f in fields if hasattr(options, f)}, option=option)

    def given(self) -> list[str]:
        return [n for n in ("model", "store", "table") if getattr(self, n) is not None]


def open_source(req: SourceRequest, *, check_metric: bool = True) -> CostSource:
    """Build the source the user named (path, ``asset:NAME`` or model folder) and, with
    ``check_metric``, refuse it when it holds another metric than ``req.metric``.

    The cost-source factory is an edge: a config section or a command-line option reaches
    it as the user wrote it, so ``asset:NAME`` is resolved here
    (:func:`hwnas.assets.resolve_path`) and the sources below get a local path."""
    from hwnas import assets

    given = req.given()
    if len(given) != 1:
        raise ConfigError(f"{_where(req, 'model')}: give exactly one cost source: model (cost model folder), store "
                          f"(+ device, backend) or table (+ column); got {', '.join(given) or 'none'}")
    name = given[0]
    ref = getattr(req, name)
    try:
        if assets.is_ref(ref):
            from hwnas.cost_models.source_models import AssetSource

            try:
                asset = assets.check_ref(str(ref), {"model": "cost_model"}.get(name, name))
            except HwnasError as exc:
                raise ConfigError(f"{_where(req, name)}: {exc}") from None
            # the edge: the reference becomes a verified local path here, and only here
            src: CostSource = AssetSource(str(ref), assets.resolve_path(str(ref), asset.kind), asset.meta, req)
        else:
            src = _open_path(name, Path(ref), req)
    except ConfigError as exc:
        if not re.match(r"[a-z_]+: ", str(exc)):  # already says where (a file line, or prefixed)
            raise
        raise ConfigError(f"{req.option}: {exc}" if req.option.startswith("-") else f"{req.option}.{exc}") from None
    if check_metric:
        src.require(req.metric, f"{req.option}.metric")
    return src


def _where(req: SourceRequest, name: str) -> str:
    """``objective.store`` for a YAML section, ``--model`` for a command-line option."""
    return req.option if req.option.startswith("-") else f"{req.option}.{name}"


def _open_path(name: str, path: Path, req: SourceRequest) -> CostSource:
    from hwnas.cost_models.source_models import model_source
    from hwnas.cost_models.source_tables import StoreSource, TableSource

    if name == "store":
        if not path.is_file():
            raise ConfigError(f"{_where(req, 'store')}: cost store not found: {path}")
        return StoreSource(path, req.device, req.backend, target=req.metric, estimator=req.estimator or None)
    if name == "table":
        if not req.column:
            raise ConfigError(f"{req.option}.column: a table source needs the value column, e.g. gold_6226_ms")
        return TableSource(path, req.column, req.key, target=_assumed(target_of(req.column), req, path))
    return model_source(path, assume=req.metric)


def _assumed(target: str | None, req: SourceRequest, where: Any) -> str:
    """A source that does not say what it holds is taken as the metric asked for, loudly."""
    if target is None:
        log.warning("%s does not say whether it holds latency or energy (name columns *_ms or *_mj); "
                    "taking it as %s (%s)", where, req.metric, TARGETS.get(req.metric, "?"))
        return req.metric
    return target
