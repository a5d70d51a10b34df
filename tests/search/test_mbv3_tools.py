"""The mbv3 space through the existing tools, unchanged: ``hwnas profile --space mbv3``
measures its primitives (SE, h-swish and the feature-mix ``fc`` included), and the zoo's
OFA-MobileNetV3 subnets are the space's own networks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hwnas import registry, zoo
from hwnas.cli import main
from hwnas.errors import ValidationError
from hwnas.search.spaces.mbv3 import MBV3Space
from hwnas.store import Store

TINY = ["--space-opt", "resolutions=[16]", "--space-opt", "width=0.25", "--space-opt", "depths=[1]",
        "--space-opt", "expansions=[3]", "--space-opt", "kernels=[3]", "--space-opt", "num_classes=10"]
FAST = ["--warmup", "1", "--min-repeats", "3", "--max-repeats", "4", "--time-budget", "0.5", "--sessions", "1"]


@pytest.mark.timeout(120)
def test_profile_space_mbv3_measures_its_primitives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    rc = main(["profile", "--space", "mbv3", "--device", "cpu", "--backend", "torch", "--store", str(store),
               "--json", *TINY, *FAST])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    space = MBV3Space(resolutions=[16], width=0.25, depths=[1], expansions=[3], kernels=[3], num_classes=10)
    keys = {p.key for p in space.primitives()}
    assert summary["n_primitives"] == len(keys) == 11
    rows = Store(store).export_rows()
    measured = {r["target"]: r for r in rows}
    assert set(measured) == keys
    assert all(r["error"] is None and r["median_ms"] > 0 for r in rows)
    assert "mbconv c8>16 4x4 k3 s2 e3 relu se" in measured  # squeeze-excite, stage 2
    assert "mbconv c24>32 1x1 k3 s1 e3 hswish se" in measured  # h-swish and SE, stage 4
    assert "fc c240>320 1x1 k1 s1 hswish" in measured  # the feature mix layer


def test_zoo_ofa_subnets_are_the_spaces_networks() -> None:
    names = {e.name for e in registry.list("zoo")}
    assert {"ofa_mbv3_max-w1.0-r224", "ofa_mbv3_mid-w1.0-r224", "ofa_mbv3_min-w1.0-r224"} <= names
    with torch.device("meta"):
        largest = registry.get("zoo", "ofa_mbv3_max-w1.0-r224").build()
    assert largest.input_shape == (1, 3, 224, 224)
    assert sum(p.numel() for p in largest.parameters()) == 7_666_040  # see test_mbv3's reference count
    small = zoo.ofa_mbv3("min", width=0.25, resolution=32, num_classes=10)
    assert not small.training and len(small.nodes) == 2 + 5 * 2 + 4
    with torch.no_grad():
        out = small(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10) and torch.isfinite(out).all()
    custom = zoo.ofa_mbv3("|".join(["d3:e6k7,e3k3,e4k5"] * 5), width=0.25, resolution=32, num_classes=10)
    assert len(custom.nodes) == 2 + 5 * 3 + 4
    with pytest.raises(ValidationError, match="ofa_mbv3"):
        zoo.ofa_mbv3("r32|d2:e3k3,e3k3", resolution=32)
