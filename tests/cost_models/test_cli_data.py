from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.cost_models import load_model
from hwnas.cost_models.data import from_csv, from_store, split
from hwnas.errors import CostModelError
from hwnas.store import Store


def test_from_store_latency_and_energy(store_path):
    with Store(store_path, create=False) as st:
        lat = from_store(st, "testcpu", "onnxruntime", "latency")
        en = from_store(st, "testcpu", "onnxruntime", "energy")
    assert len(lat.networks) == 40 and lat.unit == "ms" and en.unit == "mJ"
    key = lat.networks[0].nodes[0].key
    assert en.table[key] == pytest.approx(2.0 * lat.table[key])
    assert np.all(en.y / lat.y > 2.0)


def test_split_seeded_disjoint():
    a, b = split(10, 0.3, seed=4)
    assert len(b) == 3 and not set(a) & set(b) and set(a) | set(b) == set(range(10))
    assert [list(x) for x in split(10, 0.3, seed=4)] == [list(a), list(b)]


@pytest.mark.parametrize("target", ["latency", "energy"])
def test_fit_cost_cli_on_store(store_path, tmp_path, capsys, target):
    out = tmp_path / "models"
    rc = main(["fit-cost", "--store", str(store_path), "--device", "testcpu", "--backend", "onnxruntime",
               "--model", "lut,linear2,mlp", "--target", target, "--out", str(out), "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_test"] == 12 and set(rep["models"]) == {"lut", "linear2", "mlp"}
    assert rep["rows"][0]["model"] == "lut"
    assert rep["models"]["linear2"]["rmse"] < rep["models"]["lut"]["rmse"]
    assert (out / "report.json").is_file() and (out / "pred_vs_measured_mlp.png").is_file()
    assert load_model(out / "linear2").manifest_["training"]["target"] == target
    net_file = tmp_path / "nets.jsonl"
    with Store(store_path, create=False) as st:
        nets = [n for n, _ in st.networks()][:3]
    net_file.write_text("\n".join(n.to_json() for n in nets))
    assert main(["predict", "--model", str(out / "lut"), "--networks", str(net_file), "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["hash"] for p in preds] == [n.hash for n in nets] and all(p["prediction"] > 0 for p in preds)


def test_fit_cost_cli_table_text(store_path, capsys):
    assert main(["fit-cost", "--store", str(store_path), "--device", "testcpu", "--backend", "onnxruntime",
                 "--model", "lut,linear1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (head,) = [i for i, line in enumerate(lines) if line.split()[:1] == ["model"]]
    assert "±10%" in lines[head].split() and set(lines[head + 1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[head + 2:head + 4]] == ["lut", "linear1"]


def test_dataset_form_and_predict_arch(tmp_path, capsys, data_dir):
    out = tmp_path / "nb"
    rc = main(["fit-cost", "--dataset", str(data_dir / "nb201_latency_head60.csv"), "--space", "nb201",
               "--target", "gold_6226_ms", "--train", "40", "--model", "mlp", "--out", str(out), "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_train"] == 40 and rep["models"]["mlp"]["spearman"] > 0.3
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert main(["predict", "--model", str(out / "mlp"), "--space", "nb201", "--arch", arch]) == 0
    assert arch in capsys.readouterr().out


def test_dataset_errors(capsys, data_dir):
    d = from_csv(data_dir / "fbnet_latency_head40.csv", "fbnet", "raspi4_ms")
    assert len(d.networks) == 40 and d.table is None and d.networks[0].get_meta("space") == "fbnet"
    with pytest.raises(CostModelError, match="did you mean"):
        from_csv(data_dir / "fbnet_latency_head40.csv", "fbnet", "raspi_ms")
    rc = main(["fit-cost", "--dataset", str(data_dir / "fbnet_latency_head40.csv"), "--space", "fbnet",
               "--target", "raspi4_ms", "--model", "lut"])
    assert rc == 2 and "needs a primitive cost table" in capsys.readouterr().err


def test_help_has_examples(capsys):
    for cmd in ("fit-cost", "predict"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "example:" in capsys.readouterr().out
