"""Few-shot transfer: the robust adaptation, the multi-device base, the transfer model, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from hwnas.cli import main
from hwnas.config import build_space
from hwnas.cost_models import load_model, save_model, synthetic
from hwnas.cost_models.adapt import adapt, loo_predictions
from hwnas.cost_models.transfer import FitSchedule, MultiDeviceModel
from hwnas.cost_models.transfer_model import TransferModel
from hwnas.errors import CostModelError

DATA = Path(__file__).resolve().parents[1] / "data"


def test_adapt_follows_the_matching_device_despite_an_outlier():
    """Ten shots of a device that behaves like source 1, one of them 2x off: the robust mix
    still points at source 1, where a least-squares fit is pulled away."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(60, 4))
    t = 0.7 * Z[:, 1] + 2.0 + rng.normal(scale=0.02, size=60)
    shots, rest = np.arange(10), np.arange(10, 60)
    t_shots = t[shots].copy()
    t_shots[3] += np.log(2.0)
    a = adapt(Z[shots], t_shots, ["a", "b", "c", "d"])
    assert max(a.weights, key=a.weights.get) == "like:b"
    robust = np.abs(a.predict_log(Z[rest]) - t[rest]).mean()
    ls = np.linalg.lstsq(np.c_[np.ones(10), Z[shots]], t_shots, rcond=None)[0]
    plain = np.abs(np.c_[np.ones(50), Z[rest]] @ ls - t[rest]).mean()  # what the robust fit avoids
    assert robust < 0.1 and robust < 0.5 * plain
    loo = loo_predictions(Z[shots], t_shots)
    assert np.median(np.abs(loo - t_shots)) < 0.05 and abs(loo[3] - t_shots[3]) > 0.5  # the outlier shows


def test_adapt_needs_three_shots():
    with pytest.raises(CostModelError, match="at least 3"):
        adapt(np.ones((2, 3)), np.ones(2))


def test_new_device_from_few_shots_and_roundtrip(tmp_path):
    """Source devices follow different cost laws; a new one behaves like one of them
    (another scale and curvature): ten shots find it, and save/load keeps every prediction."""
    nets, base, _ = synthetic.synthetic_dataset("fbnet", n=160, seed=5, noise=0.0)
    count = np.array([len([p for p in n.nodes if p.op == "mbconv" and p.kernel == 5]) for n in nets], float)
    laws = np.stack([base, 0.2 + 0.05 * count], 1)
    src = laws @ np.array([[1.0, 0.05], [0.05, 1.0], [0.5, 0.5]]).T
    new = 3.0 * src[:, 1] ** 1.2
    model = MultiDeviceModel(hidden=64, members=2, schedule=FitSchedule(steps=300)).fit(nets[:120], src[:120], devices=["a", "b", "c"])
    source_rho = spearmanr(src[130:, 1], model.predict_device(nets[130:], "b")).statistic
    t = TransferModel.from_base(model).fit(nets[120:130], new[120:130])
    rho = spearmanr(new[130:], t.predict(nets[130:])).statistic
    assert t.similar_devices(1)[0][0] == "b"
    assert rho > 0.5 and rho > 0.8 * source_rho
    save_model(model, tmp_path / "base")
    save_model(t, tmp_path / "t")
    np.testing.assert_allclose(load_model(tmp_path / "base").embed(nets[130:]), model.embed(nets[130:]))
    np.testing.assert_allclose(load_model(tmp_path / "t").predict(nets[130:]), t.predict(nets[130:]))
    Z, H = model.embed_hidden(nets[130:])
    np.testing.assert_allclose(Z, model.embed(nets[130:]))
    np.testing.assert_allclose(np.log(t.predict(nets[130:])), Z @ t.w_ + t.b_ + H @ t.delta_ + t.c_)
    older = {k: v for k, v in t.state().items() if k not in ("delta", "c")}  # files from before the refinement
    mix_only = TransferModel()
    mix_only.restore(older, t.tensors())
    np.testing.assert_allclose(np.log(mix_only.predict(nets[130:])), Z @ t.w_ + t.b_)
    plain = TransferModel.from_base(model, refine=False).fit(nets[120:130], new[120:130])
    assert not plain.delta_.any() and plain.w_ == pytest.approx(t.w_)


@pytest.fixture
def shots_csv(tmp_path, data_dir):
    df = pd.read_csv(data_dir / "nb201_latency_head60.csv")
    df = df[df["raspi4_ms"] >= 0.1].reset_index(drop=True)
    df.iloc[:12][["arch_str", "raspi4_ms"]].to_csv(tmp_path / "shots.csv", index=False)
    return tmp_path / "shots.csv", df.iloc[12:]


#: The family left out of the base below: every batch size of the GTX 1080 Ti.
FAMILY = "1080ti"
BASE_ROWS = 400


@pytest.fixture(scope="module")
def unseen(tmp_path_factory):
    """A base that never saw the 1080 Ti (neither batch size) nor rows 400-599 of the slice,
    saved as a model folder; the 1080 Ti columns of those rows are the new device."""
    from hwnas.cost_models.transfer import device_families

    df = pd.read_csv(DATA / "nb201_latency_rows600.csv.gz")
    cols = [c for c in df.columns if c.endswith("_ms")]
    family = device_families(cols)[FAMILY]
    src = [c for c in cols if c not in family]
    sp = build_space("nb201")
    nets = [sp.to_network(sp.from_str(s)) for s in df["arch_str"]]
    Y = df[src].to_numpy(float)[:BASE_ROWS]
    base = MultiDeviceModel(hidden=64, members=2, schedule=FitSchedule(steps=300)).fit(nets[:BASE_ROWS], np.where(Y >= 0.1, Y, np.nan),
                                                                devices=src)
    assert not set(family) & set(base.devices_) and family == ["1080ti_1_ms", "1080ti_32_ms"]
    folder = tmp_path_factory.mktemp("base") / "nb201-no-1080ti"
    save_model(base, folder)
    return base, folder, df.iloc[BASE_ROWS:].reset_index(drop=True), nets[BASE_ROWS:], family


def _draws(base, nets, y, shuffle: bool) -> list[float]:
    """Spearman on the evaluation rows after adapting to 10 shots, for 5 shot draws; with
    ``shuffle`` the shots' latencies are permuted among them (garbage with the right scale)."""
    Z = base.embed(nets)
    out = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        shots, ev = order[:10], order[10:]
        t = np.log(y[shots])
        a = adapt(Z[shots], rng.permutation(t) if shuffle else t, base.devices_)
        out.append(float(spearmanr(y[ev], a.predict_log(Z[ev])).statistic))
    return out


@pytest.mark.timeout(300)
def test_transfer_to_a_device_family_and_rows_the_base_never_saw(unseen):
    """Ten shots of a GPU whose every column was left out of the base, scored on 190 rows the
    base never saw. The threshold (0.95 each draw) is one that shot-blind garbage cannot pass:
    with the same shots' latencies shuffled among them the mean falls far below it, so a
    predictor that ignored the shots (same answer in both arms) would fail one arm."""
    base, _, rows, nets, family = unseen
    for col in family:
        y = rows[col].to_numpy(float)
        real, control = _draws(base, nets, y, shuffle=False), _draws(base, nets, y, shuffle=True)
        assert min(real) >= 0.95, (col, real)
        assert np.mean(control) < 0.5, (col, control)


def test_fit_cost_transfer_from_a_base_folder_on_an_unseen_device(unseen, tmp_path, capsys):
    """The CLI path on the same unseen family and rows: shots from a CSV, then predictions."""
    _, folder, rows, nets, family = unseen
    rows[["arch_str", family[0]]].iloc[:10].to_csv(tmp_path / "shots.csv", index=False)
    out = tmp_path / "mydev"
    assert main(["fit-cost", "--transfer-from", str(folder), "--dataset", str(tmp_path / "shots.csv"),
                 "--target", family[0], "--space", "nb201", "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["shots"] == 10 and rep["space"] == "nb201"
    model = load_model(out)
    assert model.manifest_["training"]["transfer_from"] == str(folder)
    assert spearmanr(rows[family[0]].iloc[10:], model.predict(nets[10:])).statistic >= 0.95


def test_fit_cost_transfer_from_asset(shots_csv, tmp_path, capsys):
    """Plumbing of ``--transfer-from asset:...`` only: the shipped base was fit on every column
    of the table (raspi4 included) and most of its rows, so no accuracy is asserted here —
    the transfer accuracy tests above use a device and rows their base never saw."""
    path, rest = shots_csv
    out = tmp_path / "mydev"
    assert main(["fit-cost", "--transfer-from", "asset:nb201-base", "--dataset", str(path), "--target",
                 "raspi4_ms", "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["shots"] == 12 and rep["space"] == "nb201"
    assert {"spearman", "within_10", "max_rel_error", "mape"} <= set(rep["loo"])
    model = load_model(out)  # an ordinary model folder
    assert model.registry_name == "transfer" and model.manifest_["training"]["transfer_from"] == "asset:nb201-base"
    sp = build_space("nb201")
    pred = model.predict([sp.to_network(sp.from_str(s)) for s in rest["arch_str"]])
    assert main(["predict", "--model", str(out), "--space", "nb201", "--arch", rest["arch_str"].iloc[0], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"][0]["prediction"] == pytest.approx(pred[0])


def test_device_families_group_every_batch_size_of_a_device():
    from hwnas.cost_models.transfer import device_families

    cols = ["1080ti_1_ms", "1080ti_32_ms", "essential_ph_1_ms", "gold_6226_ms", "titan_rtx_1_ms", "titan_rtx_32_ms"]
    assert device_families(cols) == {"1080ti": ["1080ti_1_ms", "1080ti_32_ms"], "essential_ph_1": ["essential_ph_1_ms"],
                                     "gold_6226": ["gold_6226_ms"],
                                     "titan_rtx": ["titan_rtx_1_ms", "titan_rtx_32_ms"]}


def _one_line_error(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def test_transfer_bad_input_is_one_line(shots_csv, tmp_path, capsys, data_dir):
    path, _ = shots_csv
    df = pd.read_csv(path)
    df.iloc[:2].to_csv(tmp_path / "two.csv", index=False)
    err = _one_line_error(capsys, "fit-cost", "--transfer-from", "asset:nb201-base", "--dataset",
                          str(tmp_path / "two.csv"), "--target", "raspi4_ms")
    assert "at least 3 measured networks, got 2" in err
    bad = df.copy()
    bad.loc[4, "arch_str"] = "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    err = _one_line_error(capsys, "fit-cost", "--transfer-from", "asset:nb201-base", "--dataset",
                          str(tmp_path / "bad.csv"), "--target", "raspi4_ms")
    assert "bad.csv:6: nb201: cannot parse" in err
    err = _one_line_error(capsys, "fit-cost", "--transfer-from", "asset:nb201-base", "--dataset",
                          str(data_dir / "fbnet_latency_head40.csv"), "--space", "fbnet", "--target", "pixel3_ms")
    assert "fit on the 'nb201' space" in err
    err = _one_line_error(capsys, "fit-cost", "--transfer-from", "asset:nb201-pixel3", "--dataset", str(path),
                          "--target", "raspi4_ms")
    assert "not a multi-device base" in err


def test_fit_cost_transfer_from_a_store(tmp_path, data_dir, capsys):
    """k networks measured on a new device in a store (no primitive table needed)."""
    from hwnas.store import Device, Measurement, Store

    df = pd.read_csv(data_dir / "nb201_latency_head60.csv").iloc[:8]
    sp = build_space("nb201")
    with Store(tmp_path / "s.sqlite") as st:
        dev = st.add_device(Device("newboard", kind="offline"))
        for s, v in zip(df["arch_str"], df["gold_6226_ms"]):
            net = sp.to_network(sp.from_str(s))
            st.add_network(net, space="nb201")
            st.add_measurement(dev, Measurement("network", net.hash, "csv", {"batch": 1}, (float(v),)))
    assert main(["fit-cost", "--transfer-from", "asset:nb201-base", "--store", str(tmp_path / "s.sqlite"),
                 "--device", "newboard", "--backend", "csv", "--out", str(tmp_path / "m"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["shots"] == 8 and load_model(tmp_path / "m").n_train_ == 8


def test_the_fit_schedule_is_one_parameter_and_older_flat_files_load(tmp_path: Path) -> None:
    legacy = {"encoder": "mlp", "hidden": 16, "layers": 3, "steps": 40, "batch_size": 8, "lr": 0.01,
              "weight_decay": 0.0, "members": 1, "seed": 0, "device": None}
    m = MultiDeviceModel.from_params(legacy)  # how the shipped bases' model.json spell it
    assert m.get_params()["schedule"] == FitSchedule(steps=40, batch_size=8, lr=0.01, weight_decay=0.0)
    nets, y, _ = synthetic.synthetic_dataset("mbv2", n=40, seed=3, resolution=32, width=0.5)
    m.fit(nets, np.stack([y, 2 * y], 1), devices=["a", "b"])
    again = load_model(save_model(m, tmp_path / "m"))
    assert again.get_params() == m.get_params()
    assert json.loads((tmp_path / "m" / "model.json").read_text())["params"]["schedule"]["steps"] == 40
    assert np.allclose(again.predict(nets[:5]), m.predict(nets[:5]))
    with pytest.raises(CostModelError, match="schedule.steps"):
        MultiDeviceModel(schedule={"steps": -1})
    with pytest.raises(CostModelError, match="unknown key"):
        MultiDeviceModel(schedule={"epochs": 3})
