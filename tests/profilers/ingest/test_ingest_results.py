"""hwnas-results v1 (CSV and JSON) resolved through a bundle manifest or primitive keys."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwnas.errors import IngestError
from hwnas.primitives import NetworkSpec, Primitive
from hwnas.profilers.ingest import IngestOptions, ingest
from hwnas.store import Store

P7 = Primitive("mbconv", 24, 32, 56, 56, kernel=5, stride=2, expansion=6, act="relu6")
P8 = Primitive("conv", 3, 16, 32, 32, kernel=3, act="relu")
NET = NetworkSpec.chain((3, 32, 32), [P8, Primitive("fc", 16, 10, 1, 1)])
SETTINGS = {"warmup": 5, "number": 10, "repeat": 3, "threads": 1}


def _manifest(tmp_path: Path) -> Path:
    items = [{"name": "p0007", "kind": "primitive", "key": P7.key, "primitive": P7.to_dict(), "onnx": "onnx/p0007.onnx"},
             {"name": "p0008", "kind": "primitive", "key": P8.key, "primitive": P8.to_dict()},
             {"name": "n0003", "kind": "network", "hash": NET.hash, "network": NET.to_dict()}]
    p = tmp_path / "manifest.json"
    p.write_text(json.dumps({"format": "hwnas-bundle", "version": 1, "space": "mbv2", "settings": SETTINGS,
                             "items": items}))
    return p


CSV = f"""# hwnas-results v1
# device: pixel3-cpu
name,latency_ms,samples_ms,energy_mj,power_w,error
p0007,1.234,1.230 1.241 1.229,0.5,2.1,
p0008,,,,,"onnxruntime: NOT_IMPLEMENTED Conv"
n0003,4.5,,,,
{Primitive("fc", 16, 10, 1, 1).key},0.02,,,,
"""


def test_csv_results_through_manifest(tmp_path: Path) -> None:
    res = tmp_path / "results.csv"
    res.write_text(CSV)
    with Store(tmp_path / "s.sqlite") as st:
        rep = ingest(st, IngestOptions(fmt="csv", files=[res], device="pixel3-cpu", manifest=_manifest(tmp_path)))
        assert rep.to_dict()["stored"] == 4
        dev = st.find_device("pixel3-cpu")["id"]
        rows = {r["target"]: r for r in st.query(device_id=dev, backend="offline")}
        assert rows[P7.key]["median_ms"] == 1.234 and rows[P7.key]["samples"] == [1.23, 1.241, 1.229]
        assert rows[P7.key]["energy_mj"] == 0.5 and rows[P7.key]["power_w"] == 2.1
        assert rows[P7.key]["settings"] == {"format": "hwnas-results", **SETTINGS}
        assert rows[P8.key]["error"] == "onnxruntime: NOT_IMPLEMENTED Conv" and rows[P8.key]["median_ms"] is None
        assert rows[NET.hash]["kind"] == "network" and rows[NET.hash]["median_ms"] == 4.5
        assert st.network(NET.hash) == NET
        assert rows["fc c16>10 1x1 k1 s1"]["median_ms"] == 0.02


def test_json_results_and_backend(tmp_path: Path) -> None:
    res = tmp_path / "results.json"
    res.write_text(json.dumps({"format": "hwnas-results", "version": 1, "backend": "onnxruntime", "settings": SETTINGS,
                               "results": [{"name": "p0007", "latency_ms": 1.234, "samples_ms": [1.23, 1.241],
                                            "energy_mj": None, "power_w": None, "error": None},
                                           {"name": P8.key, "latency_ms": 0.3}]}))
    with Store(tmp_path / "s.sqlite") as st:
        ingest(st, IngestOptions(fmt="json", files=[res], device="pixel3-cpu", manifest=_manifest(tmp_path)))
        table = st.table(st.find_device("pixel3-cpu")["id"], "onnxruntime")
        assert table == {P7.key: 1.234, P8.key: 0.3}


@pytest.mark.parametrize("fmt, text, expected", [
    ("csv", CSV.replace("p0007,1.234", "p0007,fast"), "bad:4: expected a number for latency_ms, got 'fast'"),
    ("csv", CSV.replace("p0008,,,,,", "p0008,,,,"), "bad:5: expected 6 fields as in the header of line 3, got 5"),
    ("csv", CSV.replace("p0007,", "p9999,"), "bad:4: expected a name found in the manifest"),
    ("csv", CSV.replace("n0003,4.5", "n0003,"), "bad:6: expected latency_ms (or samples_ms, or an error)"),
    ("csv", "\n".join(CSV.splitlines()[:3]), "bad:3: expected a header and at least one result row"),
    ("csv", "name,latency_ms\n", "bad:1: expected '# hwnas-results v1'"),
    ("json", '{"format": "hwnas-results", "version": 1, "results": [{"name": "p0007", "latency_ms": "x"}]}',
     "bad: results[0]: expected a number for latency_ms, got 'x'"),
    ("json", '{"format": "hwnas-results", "version": 1, "results": [{"name": "p0007", "latency_ms": 1', "bad:1: expected valid JSON"),
    ("json", "", "bad: the file is empty"),
])
def test_malformed_results_store_nothing(tmp_path: Path, fmt: str, text: str, expected: str) -> None:
    good = tmp_path / "good"
    good.write_text(CSV if fmt == "csv" else json.dumps({"format": "hwnas-results", "version": 1,
                                                         "results": [{"name": "p0007", "latency_ms": 1.0}]}))
    bad = tmp_path / "bad"
    bad.write_text(text)
    with Store(tmp_path / "s.sqlite") as st:
        with pytest.raises(IngestError) as err:
            ingest(st, IngestOptions(fmt=fmt, files=[good, bad], device="d", manifest=_manifest(tmp_path)))
        assert str(err.value).startswith(expected), str(err.value)
        assert st.summary()["measurements"] == 0 and st.summary()["devices"] == 0
