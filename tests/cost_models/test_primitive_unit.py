"""fit-cost --unit primitive on the real ZCU102 aw_nas table (no whole networks exist)."""
from __future__ import annotations

import json
from pathlib import Path

from hwnas.cli import main

FPGA = Path(__file__).resolve().parents[1] / "data" / "fpga" / "profiled_blocks.yaml"


def test_energy_from_fpga_primitives(tmp_path: Path, capsys) -> None:
    store = tmp_path / "fpga.sqlite"
    assert main(["ingest", "--format", "awnas-yaml", str(FPGA), "--device", "zcu102-dpu-b4096",
                 "--store", str(store)]) == 0
    capsys.readouterr()
    # Whole-network fitting has nothing to learn from: the table holds single blocks only.
    assert main(["fit-cost", "--store", str(store), "--device", "zcu102-dpu-b4096", "--backend", "awnas",
                 "--target", "energy"]) == 2
    assert "usable network measurement" in capsys.readouterr().err
    assert main(["fit-cost", "--store", str(store), "--device", "zcu102-dpu-b4096", "--backend", "awnas",
                 "--unit", "primitive", "--target", "energy", "--out", str(tmp_path / "m"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["data"]["networks"] == 10 and rep["n_test"] == 3  # the 10 blocks with a power reading
    # energy = mean power x latency: linear1 on the latency table must be far better than
    # predicting the mean energy for every block
    y = rep["models"]["linear1"]
    assert y["rel_rmse"] < 0.5 and y["spearman"] > 0.9
    assert (tmp_path / "m" / "linear1").is_dir()
