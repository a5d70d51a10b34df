"""Contract suite of the ``cost_model`` role (see hwnas/cost_models/base.py).

Every model is fit on the same synthetic networks (a known non-additive latency law
over a cost table, :mod:`hwnas.cost_models.synthetic`) and judged on networks it did
not see: that is what ``hwnas fit-cost`` reports, so the contract is the property the
report relies on, plus scikit-learn's conventions and exact persistence. A model fitted
from other measurements (class attribute ``fits_on`` other than ``"networks"``) is held
to the rules that apply without its data: parameters, refusals, staying out of ``all``.
"""
from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.cost_models.base import CostModel
from hwnas.errors import HwnasError
from hwnas.primitives import NetworkSpec
from hwnas.testing._common import ContractError, component, example, expect, finite

ROLE = "cost_model"


@functools.lru_cache(maxsize=1)
def data() -> tuple[list[NetworkSpec], np.ndarray, list[NetworkSpec], np.ndarray, dict[str, float]]:
    """80 training and 40 held-out MobileNetV2-like networks, their latencies and the table."""
    from hwnas.cost_models.synthetic import synthetic_dataset

    nets, y, table = synthetic_dataset("mbv2", n=120, seed=1, resolution=32, width=0.5)
    return nets[:80], y[:80], nets[80:], y[80:], table


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))


def spearman(y: np.ndarray, p: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(y, p).statistic)


def build(name: str, params: dict[str, Any]) -> CostModel:
    cls = component(ROLE, name)
    model = cls(**params)
    expect(isinstance(model, CostModel), ROLE, name, "must subclass hwnas.cost_models.base.CostModel "
                                                     "(persistence uses its get_params/state/tensors/restore)")
    return model


def check_class(name: str, cls: Any, params: dict[str, Any]) -> None:
    """Class attributes and sklearn-style parameters."""
    expect(isinstance(cls.needs_table, bool) and isinstance(cls.in_all, bool), ROLE, name,
           "needs_table and in_all must be bools")
    expect(isinstance(cls.report_order, int), ROLE, name, "report_order must be an int")
    expect(isinstance(params, dict), ROLE, name, f"example() must return a dict of parameters, got {params!r}")
    model = build(name, params)
    got = model.get_params()
    sig = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
    expect(sorted(got) == sorted(sig), ROLE, name, "get_params() must return every __init__ argument")
    expect(all(got[k] == v for k, v in params.items()), ROLE, name,
           "__init__ must store each argument unchanged under its own name (sklearn convention)")


def check_refusals(name: str, params: dict[str, Any]) -> None:
    """Unfitted models refuse to predict; table models refuse to fit without a table."""
    tr, ytr, te, _, _ = data()
    model = build(name, params)
    try:
        model.predict(te[:2])
    except HwnasError:
        pass
    else:
        raise ContractError(f"{ROLE} {name!r}: predict() before fit() must raise a CostModelError")
    if model.needs_table:
        try:
            model.fit(tr, ytr, None)
        except HwnasError:
            return
        raise ContractError(f"{ROLE} {name!r}: needs_table is set but fit() without a table did not raise")


def check_other_data(name: str, params: dict[str, Any]) -> None:
    """A model fitted from other measurements (``fits_on``, e.g. the kernel model from a
    kernel job) stays out of ``--model all`` and refuses a network fit in one line that
    says what it needs; its own fit is tested on real data by its tests."""
    tr, ytr, _, _, table = data()
    cls = component(ROLE, name)
    expect(not cls.in_all, ROLE, name, f"fits on {cls.fits_on}, so it cannot be in `--model all` (in_all=False)")
    try:
        build(name, params).fit(tr, ytr, table)
    except HwnasError as exc:
        expect("\n" not in str(exc) and str(exc), ROLE, name, "the refusal must be one line")
        return
    raise ContractError(f"{ROLE} {name!r}: fits_on={cls.fits_on!r}, but fit() on networks did not refuse")


def check_fit(name: str, params: dict[str, Any]) -> tuple[CostModel, np.ndarray]:
    """fit returns self, learns only ``*_`` attributes, keeps params; predict is an ndarray."""
    tr, ytr, te, _, table = data()
    model = build(name, params)
    before_attrs, before_params = set(vars(model)), model.get_params()
    expect(model.fit(tr, ytr, table) is model, ROLE, name, "fit() must return self")
    learned = [k for k in set(vars(model)) - before_attrs if not k.startswith("_")]
    expect(all(k.endswith("_") for k in learned), ROLE, name,
           f"learned attributes must end in '_' (sklearn convention), got {sorted(learned)}")
    expect(model.get_params() == before_params, ROLE, name, "fit() must not change the parameters")
    p = model.predict(te)
    expect(isinstance(p, np.ndarray) and p.shape == (len(te),) and np.issubdtype(p.dtype, np.floating), ROLE, name,
           f"predict() must return a float ndarray of shape ({len(te)},), got {type(p).__name__} "
           f"{getattr(p, 'shape', '')}")
    expect(finite(p), ROLE, name, "predictions must be finite")
    empty = model.predict([])
    expect(np.asarray(empty).shape == (0,), ROLE, name, "predict([]) must return an empty array")
    return model, p


def check_quality(name: str, params: dict[str, Any], p: np.ndarray) -> None:
    """Beat the mean on held-out networks, unless the model ignores ``y`` (a table sum),
    which must still rank the held-out networks."""
    tr, ytr, te, yte, table = data()
    base = rmse(yte, np.full(len(yte), ytr.mean()))
    if rmse(yte, p) < base:
        return
    scaled = build(name, params).fit(tr, 2.0 * ytr, table).predict(te)
    expect(np.allclose(scaled, p), ROLE, name,
           f"held-out RMSE {rmse(yte, p):.4g} does not beat predicting the training mean ({base:.4g})")
    rho = spearman(yte, p)
    expect(rho > 0.8, ROLE, name, f"ignores y (a table estimate) but ranks held-out networks poorly "
                                  f"(Spearman {rho:.2f} <= 0.8)")


def check_reproducible(name: str, params: dict[str, Any], p: np.ndarray) -> None:
    """The same parameters and data give the same predictions."""
    tr, ytr, te, _, table = data()
    again = build(name, params).fit(tr, ytr, table).predict(te)
    expect(np.array_equal(again, p), ROLE, name, "two fits with the same parameters and data predict differently")


def check_persistence(name: str, model: CostModel, p: np.ndarray, tmp_dir: Path) -> None:
    """save_model / load_model round-trip: same class, parameters and predictions, bit for bit."""
    from hwnas.cost_models.persistence import load_model, save_model

    _, _, te, _, _ = data()
    folder = save_model(model, tmp_dir / f"model-{name}")
    loaded = load_model(folder)
    expect(type(loaded) is type(model) and loaded.get_params() == model.get_params(), ROLE, name,
           "load_model() must rebuild the same class with the same parameters")
    q = loaded.predict(te)
    diff = float(np.max(np.abs(q - p))) if len(p) else 0.0
    expect(np.array_equal(q, p), ROLE, name, f"predictions change after save/load (max difference {diff:.3g})")


def check(name: str, tmp_dir: Path) -> None:
    """Every cost-model rule on the synthetic MobileNetV2 data."""
    cls = component(ROLE, name)
    params = example(ROLE, name, cls, tmp_dir)
    check_class(name, cls, params)
    check_refusals(name, params)
    if getattr(cls, "fits_on", "networks") != "networks":
        check_other_data(name, params)
        return
    model, p = check_fit(name, params)
    check_quality(name, params, p)
    check_reproducible(name, params, p)
    check_persistence(name, model, p, tmp_dir)
