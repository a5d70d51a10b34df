"""Cost models: predict a network's latency or energy from its NetworkSpec.

Importing this package registers the featurizers (role ``featurizer``) and the models
(role ``cost_model``: ``lut``, ``linear1``, ``linear2``, ``mlp``, ``lstm``, ``gnn``; ``kernel``,
which is fitted from kernel measurements instead of networks; and for few-shot transfer
``multi_device`` — the base — and ``transfer``).
The search engine reaches hardware only through a cost source
(:mod:`hwnas.cost_models.source`, role ``cost_source``: store, table, model, kernel,
asset), which says what it prices::

    from hwnas.cost_models.source import SourceRequest, open_source
    costs = open_source(SourceRequest(model=path)).cost(networks)

(a CostSource, :mod:`.source`, prices anything: a store, table, fitted model, kernel
predictor or asset). Floor: above :mod:`hwnas.profilers` and :mod:`hwnas.nn` (kernel
predictors use nn's kernel detection), below the search engine, which it never imports.
Its one door to ``asset:NAME`` is the cost-source factory
(:func:`~hwnas.cost_models.source.open_source`); everything else takes paths.
"""
from __future__ import annotations

from hwnas.cost_models import features, gnn, kernel_model, linear, lstm, lut, mlp, transfer, transfer_model  # noqa: F401  (register)
from hwnas.cost_models.base import CostModel
from hwnas.cost_models.metrics import regression_metrics
from hwnas.cost_models.persistence import load_model, save_model


def model_names(*, all_only: bool = False) -> list[str]:
    """Registered cost-model names in report order (``all_only``: those ``--model all`` fits)."""
    from hwnas import registry

    entries = [e for e in registry.list("cost_model") if not all_only or getattr(e.obj, "in_all", True)]
    return [e.name for e in sorted(entries, key=lambda e: (getattr(e.obj, "report_order", 100), e.name))]


__all__ = ["CostModel", "load_model", "model_names", "regression_metrics", "save_model"]
