"""The OFA accuracy predictor: its encoding, that it learns a known ranking, that a trained
supernet run's subnets are really scored, and that it is saved and reloaded without
pickle (another space's predictor or a changed weights file refused in one line)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hwnas.errors import ConfigError
from hwnas.search.ofa.ensemble import EnsemblePredictor, load_predictor
from hwnas.search.ofa.fit import SAMPLES_CSV, fit_accuracy_predictor
from hwnas.search.ofa.predictor import MANIFEST, WEIGHTS, AccuracyPredictor, encode, held_out_metrics
from hwnas.search.ofa.sampling import open_supernet_run
from hwnas.search.spaces.mbv3 import MBV3Space

from .ofa_tiny import SPACE, tiny_run


def _space() -> MBV3Space:
    return MBV3Space(**{k: v for k, v in SPACE.items() if k != "type"})


def test_encoding_is_one_hot_of_the_active_decisions_only() -> None:
    sp = _space()
    rng = np.random.default_rng(0)
    archs = [sp.sample(rng) for _ in range(30)]
    x = encode(sp, archs)
    for a, row in zip(archs, x):
        assert row.sum() == len(sp.active(a))  # one bit per active decision
    # Choices a stage's depth skips change the arch but not the network: same encoding.
    a = next(a for a in archs if len(sp.active(a)) < len(a))
    skipped = next(i for i in range(len(a)) if i not in sp.active(a))
    b = list(a)
    b[skipped] = (b[skipped] + 1) % sp.decisions[skipped].size
    assert np.array_equal(encode(sp, [a])[0], encode(sp, [tuple(b)])[0])
    assert sp.to_str(a) == sp.to_str(tuple(b))


def test_the_predictor_learns_a_known_ranking() -> None:
    """Labels from a known law of the architecture (bigger kernels and expansions, deeper
    stages and higher resolution help, with an interaction): held-out rank agreement."""
    sp = _space()
    rng = np.random.default_rng(1)
    archs = list({sp.canonical(sp.sample(rng)) for _ in range(400)})[:200]

    def law(a: tuple) -> float:
        choices = sp.stage_choices(a)
        size = sum(e * k for st in choices for e, k in st) / 100
        return 0.5 + 0.3 * np.tanh(size) + 0.05 * sp.resolution_of(a) / 10 + 0.02 * len(choices[0]) * len(choices[4])

    y = np.array([law(a) for a in archs])
    pred = AccuracyPredictor(sp, {"type": "mbv3"}, epochs=300).fit(archs[:150], y[:150])
    m = held_out_metrics(y[150:], pred.predict(archs[150:]))
    baseline = held_out_metrics(y[150:], np.full(50, y[:150].mean()))
    assert m["kendall_tau"] > 0.7 and m["rmse"] < 0.5 * baseline["rmse"]


@pytest.mark.timeout(120)
def test_a_supernet_runs_subnets_are_scored_fitted_saved_and_reloaded(tmp_path_factory: pytest.TempPathFactory,
                                                                      tmp_path: Path) -> None:
    run = open_supernet_run(tiny_run(tmp_path_factory.getbasetemp()))
    pred, report = fit_accuracy_predictor(run, samples=12, holdout=0.25, out=tmp_path / "p")
    with open(tmp_path / "p" / SAMPLES_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    acc = np.array([float(r["accuracy"]) for r in rows])
    assert len(rows) == 12 == report["samples"] and report["held_out"] == 3
    assert acc.max() > 0.2 and len(set(acc)) > 1  # trained (10 classes: chance 0.1), and subnets differ
    sp, wm = run.space, run.weights_manager
    strs = [r["arch_str"] for r in rows]
    assert sp.to_str(wm.extreme_arch("max")) in strs and sp.to_str(wm.extreme_arch("min")) in strs
    metrics = report["metrics"]
    assert set(metrics) == {"ensemble", "mlp", "ridge", "macs_only", "train_mean", "label_noise"}
    assert metrics["ensemble"]["n"] == 3 and report["chosen"] in report["cv"]
    # the held-out subnets scored again on other calibration batches: the labels' own noise
    noise = metrics["label_noise"]
    assert noise["n"] == 3 and noise["label_std"] >= 0 and -1 <= noise["kendall_tau_between_scorings"] <= 1
    held = [float(r["accuracy"]) for r in rows if r["held_out"] == "1"]
    assert noise["rmse_between_scorings"] <= max(held) - min(held) + 0.5  # same subnets: close, not unrelated
    again = load_predictor(tmp_path / "p", sp, run.space_id())
    probe = [sp.sample(np.random.default_rng(3)) for _ in range(5)]
    assert np.allclose(again.predict(probe), pred.predict(probe))
    assert again.metrics == json.loads((tmp_path / "p" / MANIFEST).read_text())["metrics"]

    other = {**run.space_id(), "width": 0.5}
    with pytest.raises(ConfigError, match=r"another space \(mbv3 with width=0.25, the run's has width=0.5\)") as err:
        load_predictor(tmp_path / "p", sp, other)
    assert "\n" not in str(err.value)
    (tmp_path / "p" / WEIGHTS).write_bytes((tmp_path / "p" / WEIGHTS).read_bytes() + b"x")
    with pytest.raises(ConfigError, match="sha256 differs"):
        load_predictor(tmp_path / "p", sp, run.space_id())


def test_the_ensemble_is_chosen_by_cv_ranks_better_and_reloads_without_pickle(tmp_path: Path) -> None:
    """Labels from a nonlinear law of the architecture plus label noise: the CV-chosen
    ensemble (richer features) ranks held-out subnets at least as well as the one-hot MLP,
    and its saved form (a state_dict of tensors) predicts the same after reloading."""
    sp = _space()
    rng = np.random.default_rng(4)
    archs = list({sp.canonical(sp.sample(rng)) for _ in range(300)})[:160]

    def law(a: tuple) -> float:
        choices = sp.stage_choices(a)
        size = sum(e * k for st in choices for e, k in st) / 60
        return 0.6 + 0.25 * np.tanh(size - 1.0) + 0.04 * (sp.resolution_of(a) == 10)

    y = np.array([law(a) for a in archs]) + 0.01 * rng.normal(size=len(archs))
    ens = EnsemblePredictor(sp, {"type": "mbv3"}, seed=0, folds=4).fit(archs[:110], y[:110])
    assert set(ens.cv) >= {"ridge", "mlp", "gbt", "ridge+mlp+gbt"} and "+".join(ens.chosen) in ens.cv
    best_cv = max(v["kendall_tau"] for v in ens.cv.values())
    assert ens.cv["+".join(ens.chosen)]["kendall_tau"] == best_cv
    m_ens = held_out_metrics(y[110:], ens.predict(archs[110:]))
    m_old = held_out_metrics(y[110:], AccuracyPredictor(sp, {"type": "mbv3"}, epochs=300).fit(
        archs[:110], y[:110]).predict(archs[110:]))
    assert m_ens["kendall_tau"] > 0.6 and m_ens["kendall_tau"] >= m_old["kendall_tau"] - 0.02
    ens.save(tmp_path / "e")
    assert json.loads((tmp_path / "e" / MANIFEST).read_text())["format"] == "hwnas-acc-predictor/2"
    again = load_predictor(tmp_path / "e", sp, {"type": "mbv3"})
    assert isinstance(again, EnsemblePredictor) and again.chosen == ens.chosen
    assert np.allclose(again.predict(archs[110:]), ens.predict(archs[110:]))
