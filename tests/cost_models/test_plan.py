"""Planned shots: the greedy D-optimal design and ``fit-cost --transfer-from BASE --plan K``."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hwnas.cli import main
from hwnas.cost_models.adapt import adapt
from hwnas.cost_models.plan import d_optimal
from hwnas.errors import CostModelError


def _logdet(Z: np.ndarray, idx) -> float:
    X = np.c_[np.ones(len(idx)), Z[idx] - Z.mean(0)]
    return float(np.linalg.slogdet(np.diag(np.r_[1e-6, np.ones(Z.shape[1])]) + X.T @ X)[1])


def _sources(seed: int, n: int = 600):
    """Source outputs as a base gives them: one strong common axis (fast vs slow) and weaker
    device contrasts."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1)) + 0.35 * rng.normal(size=(n, 5))


def test_the_plan_is_more_informative_than_random_shots_and_deterministic():
    Z = _sources(0)
    idx, gains = d_optimal(Z, 10, seed=1)
    assert len(set(idx)) == 10 and all(a >= b - 1e-9 for a, b in zip(gains, gains[1:]))  # greedy: gains shrink
    rng = np.random.default_rng(2)
    randoms = [_logdet(Z, rng.choice(len(Z), 10, replace=False)) for _ in range(200)]
    assert _logdet(Z, idx) > max(randoms)
    assert d_optimal(Z, 10, seed=1)[0] == idx


def test_planned_shots_adapt_better_than_random_ones():
    """A new device that mixes two sources with 3% noise: over twenty candidate draws, ten
    planned shots predict the other networks better on average and in the worst draw."""
    errs: dict[str, list[float]] = {"planned": [], "random": []}
    for s in range(20):
        Z = _sources(100 + s)
        rng = np.random.default_rng(s)
        t = 1.5 + 0.4 * Z[:, 0] + 0.25 * Z[:, 2] - 0.2 * Z[:, 4] + rng.normal(scale=0.03, size=len(Z))
        cand, ev = np.arange(300), np.arange(300, len(Z))
        for name, shots in (("planned", cand[d_optimal(Z[cand], 10, seed=s)[0]]), ("random", cand[:10])):
            a = adapt(Z[shots], t[shots])
            errs[name].append(float(np.sqrt(np.mean((a.predict_log(Z[ev]) - t[ev]) ** 2))))
    planned, rand = np.array(errs["planned"]), np.array(errs["random"])
    assert planned.mean() < 0.85 * rand.mean() and planned.max() < rand.max(), (planned.mean(), rand.mean())


def test_d_optimal_refuses_more_shots_than_candidates():
    with pytest.raises(CostModelError, match="K = 5 is larger than the 4 candidate"):
        d_optimal(np.ones((4, 2)), 5)


def _one_line_error(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def test_fit_cost_plan_writes_the_shots_and_they_feed_the_transfer(tmp_path, capsys, data_dir):
    """``--plan 6`` over the 60 rows of a table: six distinct rows written three ways (the same
    plan for the same seed is tested on :func:`d_optimal`); measured (here: the table's raspi4
    column) they are the shots of ``--transfer-from``."""
    table = data_dir / "nb201_latency_head60.csv"
    out = tmp_path / "plan"
    args = ["fit-cost", "--transfer-from", "asset:nb201-base", "--plan", "6", "--dataset", str(table),
            "--target", "mydev_ms", "--out", str(out), "--json"]
    assert main(args) == 0
    rep = json.loads(capsys.readouterr().out)
    archs = (out / "plan.txt").read_text().splitlines()
    df = pd.read_csv(table)
    assert len(archs) == len(set(archs)) == 6 and set(archs) <= set(df["arch_str"])
    assert json.loads((out / "plan.json").read_text()) == archs == [r["arch"] for r in rep["plan"]]
    assert rep["candidates"] == df["arch_str"].nunique() and rep["space"] == "nb201"
    sheet = pd.read_csv(out / "plan.csv")
    assert list(sheet.columns) == ["arch", "mydev_ms"] and sheet["mydev_ms"].isna().all()
    sheet["mydev_ms"] = sheet["arch"].map(dict(zip(df["arch_str"], df["raspi4_ms"])))
    sheet.to_csv(out / "plan.csv", index=False)
    assert main(["fit-cost", "--transfer-from", "asset:nb201-base", "--dataset", str(out / "plan.csv"),
                 "--target", "mydev_ms", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shots"] == 6


def test_fit_cost_plan_bad_input_is_one_line(tmp_path, capsys, data_dir):
    table = str(data_dir / "nb201_latency_head60.csv")
    err = _one_line_error(capsys, "fit-cost", "--transfer-from", "asset:nb201-base", "--plan", "100", "--dataset",
                          table, "--out", str(tmp_path / "p"))
    assert "K = 100 is larger than the 60 distinct candidate architectures" in err
    assert not (tmp_path / "p").exists()
    err = _one_line_error(capsys, "fit-cost", "--transfer-from", "asset:nb201-base", "--plan", "2", "--candidates",
                          "50", "--out", str(tmp_path / "p"))
    assert "K must be an integer >= 3" in err
    (tmp_path / "a.txt").write_text("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|\nnot-an-arch\n")
    err = _one_line_error(capsys, "fit-cost", "--transfer-from", "asset:nb201-base", "--plan", "3", "--arch-file",
                          str(tmp_path / "a.txt"), "--out", str(tmp_path / "p"))
    assert "a.txt:2:" in err
    err = _one_line_error(capsys, "fit-cost", "--plan", "5", "--dataset", table)
    assert "give --transfer-from" in err
