from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.cost_models import load_model, model_names, save_model
from hwnas.errors import CostModelError


@pytest.mark.parametrize("name", model_names(all_only=True))
def test_save_load_identical_predictions(fitted, mbv2_data, tmp_path, name):
    _, _, te, _, _ = mbv2_data
    d = save_model(fitted[name], tmp_path / name, {"device": {"fingerprint": "abc"}, "training": {"networks": 110}})
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["device"] == {"fingerprint": "abc"} and manifest["training"]["networks"] == 110
    assert set(manifest["files"]) == ({"model.json", "weights.pt"} if name in ("mlp", "lstm", "gnn") else {"model.json"})
    loaded = load_model(d)
    np.testing.assert_array_equal(loaded.predict(te), fitted[name].predict(te))
    assert loaded.get_params() == fitted[name].get_params()


def test_no_pickle_in_weights(fitted, tmp_path):
    import torch

    d = save_model(fitted["mlp"], tmp_path / "m")
    sd = torch.load(d / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in sd.values())


def test_tampered_json_refused(fitted, tmp_path):
    d = save_model(fitted["linear1"], tmp_path / "m")
    doc = json.loads((d / "model.json").read_text())
    doc["state"]["coef"][0] *= 2
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(CostModelError, match="sha256 does not match"):
        load_model(d)


def test_truncated_weights_refused(fitted, tmp_path):
    d = save_model(fitted["gnn"], tmp_path / "g")
    data = (d / "weights.pt").read_bytes()
    (d / "weights.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CostModelError, match="weights.pt.*modified or truncated"):
        load_model(d)


def test_missing_and_damaged_manifest(fitted, tmp_path):
    d = save_model(fitted["mlp"], tmp_path / "m")
    (d / "weights.pt").unlink()
    with pytest.raises(CostModelError, match="weights.pt is missing"):
        load_model(d)
    (d / "manifest.json").write_text("{trunc")
    with pytest.raises(CostModelError, match="unreadable manifest"):
        load_model(d)
    with pytest.raises(CostModelError, match="not a cost-model folder"):
        load_model(tmp_path / "nowhere")


def test_loaded_model_carries_table(fitted, mbv2_data, tmp_path):
    _, _, te, _, table = mbv2_data
    d = save_model(fitted["lut"], tmp_path / "lut")
    loaded = load_model(d)
    assert loaded.nodes_.table == table
    expect = [sum(table[p.key] for p in n.nodes) for n in te[:5]]
    np.testing.assert_allclose(loaded.predict(te[:5]), expect)
