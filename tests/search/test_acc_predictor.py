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
    assert set(report["metrics"]) == {"mlp", "ridge", "train_mean"} and report["metrics"]["mlp"]["n"] == 3
    again = AccuracyPredictor.load(tmp_path / "p", sp, run.space_id())
    probe = [sp.sample(np.random.default_rng(3)) for _ in range(5)]
    assert np.allclose(again.predict(probe), pred.predict(probe))
    assert again.metrics == json.loads((tmp_path / "p" / MANIFEST).read_text())["metrics"]

    other = {**run.space_id(), "width": 0.5}
    with pytest.raises(ConfigError, match=r"another space \(mbv3 with width=0.25, the run's has width=0.5\)") as err:
        AccuracyPredictor.load(tmp_path / "p", sp, other)
    assert "\n" not in str(err.value)
    (tmp_path / "p" / WEIGHTS).write_bytes((tmp_path / "p" / WEIGHTS).read_bytes() + b"x")
    with pytest.raises(ConfigError, match="sha256 differs"):
        AccuracyPredictor.load(tmp_path / "p", sp, run.space_id())
