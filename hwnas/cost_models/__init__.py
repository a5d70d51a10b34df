"""Cost models: predict a network's latency or energy from its NetworkSpec.

Importing this package registers the featurizers (role ``featurizer``) and the models
(role ``cost_model``: ``lut``, ``linear1``, ``linear2``, ``mlp``, ``lstm``, ``gnn``, and ``kernel``,
which is fitted from kernel measurements instead of networks).
The search engine needs only::

    from hwnas.cost_models import load_model
    costs = load_model(path).predict(networks)
"""
from __future__ import annotations

from hwnas.cost_models import features, gnn, kernel_model, linear, lstm, lut, mlp  # noqa: F401  (register)
from hwnas.cost_models.base import CostModel
from hwnas.cost_models.metrics import regression_metrics
from hwnas.cost_models.persistence import load_model, save_model

#: Registered model names, in report order.
MODEL_NAMES: tuple[str, ...] = ("lut", "linear1", "linear2", "mlp", "lstm", "gnn")

__all__ = ["CostModel", "MODEL_NAMES", "load_model", "regression_metrics", "save_model"]
