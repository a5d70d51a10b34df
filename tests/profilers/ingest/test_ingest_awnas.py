"""aw_nas profiled_blocks.yaml: real values, energy table, export round trip, bad files."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hwnas.errors import IngestError
from hwnas.profilers.ingest import IngestOptions, export_awnas, ingest
from hwnas.store import Store

DATA = Path(__file__).resolve().parents[2] / "data" / "fpga"
YAML = DATA / "profiled_blocks.yaml"
FIRST = "mbconv c24>24 28x28 k5 s1 e3 relu6"


def test_real_file_energy_table_and_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        rep = ingest(st, IngestOptions(fmt="awnas-yaml", files=[YAML], device="zcu102-dpu-b4096")).to_dict()
        assert rep["stored"] == 92 and rep["with_energy"] == 10 and len(rep["skipped"]) == 19
        assert all("spatial_size is null" in s["reason"] for s in rep["skipped"])
        dev = st.find_device("zcu102-dpu-b4096")["id"]
        lat = st.table(dev, "awnas")
        energy = st.table(dev, "awnas", metric="energy_mj")
        assert lat[FIRST] == pytest.approx(0.06147037999999982)
        # 6289297.52 µW x 0.06147 ms: power x latency, W x ms = mJ
        assert energy[FIRST] == pytest.approx(6.289297523809524 * 0.06147037999999982)
        assert lat["conv c3>16 224x224 k3 s2 relu"] == pytest.approx(0.016659999999999984)
        assert len(energy) == 10
        row = st.query(device_id=dev, target=FIRST)[0]
        assert row["extra"]["energy_method"] == "mean_power_x_latency" and row["power_w"] == pytest.approx(6.2892975)
        # A primitive listed twice becomes one measurement with two samples.
        dup = st.query(device_id=dev, target="mbconv c24>24 28x28 k7 s1 e3 relu6")
        assert len(dup) == 1 and dup[0]["n"] == 2
        out = tmp_path / "back.yaml"
        res = export_awnas(st, "zcu102-dpu-b4096", "awnas", out)
        assert res["written"] == 92 and res["with_power"] == 10 and res["skipped"] == []
    back = {(e["prim_type"], e["C"], e["C_out"], e.get("expansion"), e.get("kernel_size"), e["spatial_size"],
             e["stride"]): e for e in yaml.safe_load(out.read_text())}
    e = back[("mobilenet_v2_block", 24, 24, 3, 5, 28, 1)]
    assert e["performances"]["latency"] == pytest.approx(0.06147037999999982)
    assert e["performances"]["power"] == pytest.approx(6289297.523809524)
    with Store(tmp_path / "s2.sqlite") as st2:
        assert ingest(st2, IngestOptions(fmt="awnas-yaml", files=[out], device="z")).to_dict()["stored"] == 92


@pytest.mark.parametrize("mutate, expected", [
    (lambda t: t.replace("latency: 0.06147037999999982", "latency: fast", 1),
     "bad.yaml:1: expected performances.latency (ms) to be a number >= 0, got 'fast'"),
    (lambda t: t.replace("- C: 16\n  C_out: 16", "- C: 16\n  C_out: many", 1), "bad.yaml:12: expected C_out to be an integer"),
    (lambda t: t[:200] + "\n  - [", "bad.yaml:"),
    (lambda t: "", "bad.yaml: the file is empty"),
    (lambda t: "a: 1\n", "bad.yaml:1: expected a YAML list of aw_nas entries"),
])
def test_malformed_yaml_rejected_whole(tmp_path: Path, mutate, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(mutate(YAML.read_text()))
    with Store(tmp_path / "s.sqlite") as st:
        with pytest.raises(IngestError) as err:
            ingest(st, IngestOptions(fmt="awnas-yaml", files=[YAML, bad], device="z"))
        assert str(err.value).startswith(expected), str(err.value)
        assert st.summary()["measurements"] == 0 and st.summary()["primitives"] == 0
