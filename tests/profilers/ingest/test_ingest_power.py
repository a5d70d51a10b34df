"""Power logs (PAT, hwmon, watts), run segmentation with a clock offset, energy per inference."""
from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.errors import IngestError
from hwnas.profilers.ingest import IngestOptions, ingest, plan
from hwnas.profilers.ingest.power import parse_pat, parse_segments
from hwnas.store import Store

DATA = Path(__file__).resolve().parents[2] / "data" / "fpga"
PAT = DATA / "pat_datalog_example.csv"
LOG = DATA / "dnndk_proxylessmobile05.log"
CONV1 = "dpu_layer c1>1 1x1 k1 s1 layer=proxylessmobile05_conv_1"


def test_real_pat_log_and_segments() -> None:
    log = parse_pat(PAT)
    assert len(log.times) == 16 and log.rails == ["VCCINT"]
    assert log.watts[0] == pytest.approx(6.178900) and log.watts[2] == pytest.approx(6.171834)
    assert log.times[2] - log.times[1] == pytest.approx(0.5)  # two samples in one second are spread
    assert [s.reason for s in log.skipped] == ["incomplete last line (logger stopped mid-write)"]
    both = parse_pat(PAT, {"VCCINT": 1, "VCCBRAM": 2})
    assert both.watts[0] == pytest.approx(6.178900 + 0.044070)
    segs = parse_segments(DATA / "run_time_stamps.txt")
    assert len(segs) == 1001 and segs[0].name == "sample2567"
    assert segs[0].end - segs[0].start == pytest.approx(6.196386)


def test_bad_middle_line_rejects_power_log(tmp_path: Path) -> None:
    lines = PAT.read_text().splitlines()
    bad = tmp_path / "pat.csv"
    bad.write_text("\n".join(lines[:5] + [lines[5].replace("6170817", "6.1e6x")] + lines[6:]) + "\n")
    with Store(tmp_path / "s.sqlite") as st:
        with pytest.raises(IngestError, match=r"pat.csv:6: expected a number for rail VCCINT"):
            ingest(st, IngestOptions(fmt="dnndk", files=[LOG], device="z", power=bad))
        assert st.summary()["measurements"] == 0
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[:3] + [lines[3][:30]] + lines[4:]) + "\n")
    with pytest.raises(IngestError, match=r"short.csv:4: expected a timestamp and 17 rail columns, got 2 field"):
        plan(IngestOptions(fmt="dnndk", files=[LOG], device="z", power=short))


def test_segments_with_clock_offset_integral_energy(tmp_path: Path) -> None:
    seg = tmp_path / "segs.txt"
    seg.write_text("proxylessmobile05_conv_1 2020-11-19 05:17:25 2020-11-19 05:17:31\nsample1 2020-11-19 05:17:25 "
                   "2020-11-19 05:17:31\n")
    opts = IngestOptions(fmt="dnndk", files=[LOG], device="z", power=PAT, segments=seg, clock_offset_h=16,
                         inferences=1000)
    with Store(tmp_path / "s.sqlite") as st:
        rep = ingest(st, opts)
        row = st.query(target=CONV1)[0]
        assert 6.170817 <= row["power_w"] <= 6.183143
        assert row["energy_mj"] == pytest.approx(row["power_w"] * 6.0)  # W x 6 s / 1000 inferences, in mJ
        assert row["extra"]["energy_method"] == "integral" and row["extra"]["clock_offset_h"] == 16
        assert rep.to_dict()["with_energy"] == 1
        assert any(s.name == "sample1" and "no latency record" in s.reason for s in rep.skipped)
    wrong = plan(IngestOptions(fmt="dnndk", files=[LOG], device="z", power=PAT, segments=seg))
    assert any("covers 0%" in s.reason for s in wrong.skipped)


def test_watts_and_hwmon_logs(tmp_path: Path) -> None:
    seg = tmp_path / "segs.txt"
    seg.write_text("proxylessmobile05_conv_1 100 106 1000\nproxylessmobile05_fc_1 100 106\n")
    watts = tmp_path / "w.csv"
    watts.write_text("timestamp,watts\n" + "".join(f"{99 + i * 0.5},2.0\n" for i in range(20)))
    hwmon = tmp_path / "h.csv"
    hwmon.write_text("timestamp,power1_input,power2_input\n" + "".join(f"{99 + i},2000000,500000\n" for i in range(10)))
    for path, fmt in ((watts, "watts"), (hwmon, "hwmon")):
        rep = plan(IngestOptions(fmt="dnndk", files=[LOG], device="z", power=path, power_format=fmt, segments=seg))
        by = {m.target: m for m in rep.measurements}
        assert by[CONV1].energy_mj == pytest.approx(2.0 * 6 / 1000 * 1000)       # integral, count in segments file
        assert by[CONV1].extra["energy_method"] == "integral"
        fc = by["dpu_layer c1>1 1x1 k1 s1 layer=proxylessmobile05_fc_1"]
        assert fc.energy_mj == pytest.approx(2.0 * 0.235) and fc.extra["energy_method"] == "mean_power_x_latency"
    both = plan(IngestOptions(fmt="dnndk", files=[LOG], device="z", power=hwmon, power_format="hwmon",
                              rails="power1_input,power2_input"))
    m = next(x for x in both.measurements if x.target == CONV1)
    assert m.power_w == pytest.approx(2.5) and m.extra["energy_method"] == "log_mean_power_x_latency"
