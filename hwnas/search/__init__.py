"""The search engine: component roles joined by a rollout.

Floor: above :mod:`hwnas.cost_models`; it reaches hardware only through a
:class:`~hwnas.cost_models.source.CostSource` and never imports :mod:`hwnas.profilers`
(``hwnas test --profile`` hands it a measuring function). Its torch modules come from
:mod:`hwnas.nn`; its run config is read by :mod:`hwnas.config`.
"""
from __future__ import annotations
