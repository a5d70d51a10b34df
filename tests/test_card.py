"""The card's three commands in a fresh folder, as written: `hwnas profile --device cpu`,
`hwnas fit-cost`, `hwnas search --objective latency` (hwnas.search.card), and their
one-line refusals."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hwnas.cli import main
from hwnas.search import card


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    assert main(list(argv)) == 0, capsys.readouterr().err
    c = capsys.readouterr()
    return c.out, c.err


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    return err


@pytest.mark.slow
def test_the_card_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No argument beyond the card's; minutes on a busy 2-core machine (real profiling and training)."""
    from hwnas.store import Store

    monkeypatch.chdir(tmp_path)
    out, err = run(capsys, "profile", "--device", "cpu")
    assert "no --space: profiling the default space mbv2" in err and "next: hwnas fit-cost" in out
    with Store("hwnas-store.sqlite", readonly=True) as st:
        assert st.summary()["networks"] == card.NETWORKS
    out, err = run(capsys, "fit-cost")
    assert "next: hwnas search --objective latency" in out and (tmp_path / "hwnas-cost" / "report.json").is_file()
    best = card.best_model("hwnas-cost")
    assert best is not None and best.name in card.MODELS.split(",")
    out, err = run(capsys, "search", "--objective", "latency")
    assert "cost model fitted here" in err and "next: hwnas derive runs/card-latency" in out
    written = yaml.safe_load((tmp_path / "runs" / "card-latency" / "search.yaml").read_text())
    hw = written["objective"]["objectives"][1]
    assert hw["model"] == str(best.resolve()) and hw["metric"] == "latency"
    rows = (tmp_path / "runs" / "card-latency" / "rollouts.csv").read_text().splitlines()
    assert len(rows) == 1 + written["trainer"]["steps"]
    out, _ = run(capsys, "search", "runs/card-latency/search.yaml")  # the written config re-runs: resumes, done
    assert f"{written['trainer']['steps']} rollouts" in out


@pytest.mark.slow
def test_search_without_profiling_uses_the_shipped_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    out, err = run(capsys, "search", "--objective", "latency", "--steps", "1")
    assert card.ASSET_STORE in err and "config written to runs/card-latency/search.yaml" in err
    written = yaml.safe_load((tmp_path / "runs" / "card-latency" / "search.yaml").read_text())
    assert written["objective"]["objectives"][1]["store"] == card.ASSET_STORE
    rows = (tmp_path / "runs" / "card-latency" / "rollouts.csv").read_text().splitlines()
    assert rows[0].endswith("latency_ms,loss") and len(rows) == 2
    assert "energy" in refused(capsys, "search", "--objective", "energy")


def test_fit_cost_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.assets import resolve_path
    from hwnas.store import Device, Measurement, Store

    monkeypatch.chdir(tmp_path)
    assert "run `hwnas profile --device cpu` first" in refused(capsys, "fit-cost")
    shutil.copy(resolve_path(card.ASSET_STORE, "store"), "hwnas-store.sqlite")
    with Store("hwnas-store.sqlite") as st:  # a second device with measured networks
        dev = st.add_device(Device(name="other-board", kind="cpu", cpu_model="test", cores=1, threads=1))
        nets = [r["target"] for r in st.query(kind="network", ok_only=True)][:4]
        st.add_measurements(dev, [Measurement(kind="network", target=h, backend="onnxruntime",
                                              settings={"batch": 1}, samples_ms=(1.0 + i, 1.1 + i))
                                  for i, h in enumerate(nets)])
    err = refused(capsys, "fit-cost")
    assert "several devices/backends" in err and "other-board" in err and "--backend onnxruntime" in err
