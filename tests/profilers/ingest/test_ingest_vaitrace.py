"""vaitrace --txt (real VCK190 summary + other releases' headers) and profile_summary.csv."""
from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.errors import IngestError
from hwnas.profilers.ingest import IngestOptions, ingest
from hwnas.profilers.ingest.vaitrace_csv import VaitraceCsvFormat
from hwnas.profilers.ingest.vaitrace_txt import VaitraceTxtFormat
from hwnas.store import Store

DATA = Path(__file__).resolve().parents[2] / "data" / "fpga"
TXT = DATA / "vaitrace_txt_summary_vck190.txt"
LONG = "quantized_model__Net__Sequential_features__Conv2d_layer_with_a_very_long_name__ret_123"
CSV_TEXT = """Profile Summary
Generated on: 2021-03-02 10:11:12
Board: zcu102

DPU Summary
Kernel Name,Number Of Runs,CU Full Name,Minimum Time (ms),Average Time (ms),Maximum Time (ms),Workload(GOP),DPU Performance(GOP/s),Mem IO(MB),Mem Bandwidth(MB/s),
subgraph_conv1,651,DPUCZDX8G_1:batch-1,0.067,11.461,34.191,7.718,673.388,49.947,4357.893,
subgraph_conv1,640,DPUCZDX8G_2:batch-1,0.070,11.539,30.100,7.718,668.800,49.947,4330.000,
subgraph_fc,651,DPUCZDX8G_1:batch-1,0.010,0.120,0.310,0.002,16.700,1.100,9166.600,
vart::TensorBuffer::copy_tensor_buffer,1302,CPU,0.011,0.025,0.090,
"""


def _w(tmp_path: Path, text: str, name: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_real_txt_summary() -> None:
    parsed = VaitraceTxtFormat().parse(TXT)
    (rec,) = parsed.records
    assert rec.name == "SimpleCNN__SimpleCNN_Conv2d_conv1__ret_5"
    assert rec.samples_ms == [0.106] and rec.settings == {"format": "vaitrace", "batch": 6}
    assert rec.extra["hw_runtime_ms"] == 0.048 and rec.extra["workload_gop"] == 0.012
    assert rec.extra["avg_bw_mbps"] == 11568.417 and rec.extra["efficiency_pct"] == 2.6
    assert parsed.notes["header"] == "2.5/3.x-aarch64"
    assert [s.name for s in parsed.skipped] == ["vart::TensorBuffer::copy_tensor_buffer", "xir::XrtCu::run"]


@pytest.mark.parametrize("header, row, version, runtime", [
    ("DPU | Batch | SubGraph | Workload(GOP) | RunTime(ms) | Perf(GOP/s) | Mem(MB) | MB/s",
     "DPUCZDX8G_1 | 1 | subgraph_conv1 | 0.236 | 1.302 | 181.3 | 2.41 | 1851.0", "1.4", 1.302),
    ("DPU Id | Bat | SubGraph | WL | RT | Perf | LdWB | LdFM | StFM | AvgBw",
     "DPUCZDX8G_1 | 1 | subgraph_conv1 | 0.236 | 0.891 | 264.9 | ~0 | 0.602 | 0.301 | 1013.5", "2.0", 0.891),
    ("DPU Id | Bat | DPU SubGraph | WL | SW_RT | LdWB | LdFM | StFM | AvgBw",
     f"DPUCV2DX8G_1 | 4 | ...{LONG[-60:]} | 0.012 | ~0 | 0.511 | 0.024 | 0.022 | 11568.417", "3.x-x86", 0.0),
])
def test_other_releases_headers_and_approx_zero(tmp_path: Path, header: str, row: str, version: str,
                                                runtime: float) -> None:
    real = TXT.read_text().splitlines()
    p = _w(tmp_path, "\n".join([header, row, "", *real[3:]]) + "\n", "v.txt")
    parsed = VaitraceTxtFormat().parse(p)
    (rec,) = parsed.records
    assert parsed.notes["header"] == version and rec.samples_ms == [runtime]
    if version == "2.0":
        assert rec.extra["approx_zero"] == ["load_weights_mb"] and rec.extra["load_weights_mb"] == 0.0


def test_shortened_name_maps_by_suffix(tmp_path: Path) -> None:
    real = TXT.read_text().splitlines()
    p = _w(tmp_path, "\n".join([real[0], real[1].replace("SimpleCNN__SimpleCNN_Conv2d_conv1__ret_5", "..." + LONG[-60:]),
                                *real[2:]]), "long.txt")
    mapping = _w(tmp_path, f'{LONG}: "conv c3>16 32x32 k3 s1 relu"\n', "map.yaml")
    with Store(tmp_path / "s.sqlite") as st:
        ingest(st, IngestOptions(fmt="vaitrace-txt", files=[p], device="vck190", mapping=mapping))
        assert st.table(st.find_device("vck190")["id"], "vaitrace") == {"conv c3>16 32x32 k3 s1 relu": 0.106}


def test_csv_summary_with_vai13_header_quirk(tmp_path: Path) -> None:
    quirky = CSV_TEXT.replace("Average Time (ms),Maximum Time (ms)", "Maximum Time (ms),Average Time (ms)")
    for text, quirk in ((CSV_TEXT, False), (quirky, True)):
        parsed = VaitraceCsvFormat().parse(_w(tmp_path, text, "profile_summary.csv"))
        recs = {r.name: r for r in parsed.records}
        assert parsed.notes["vai13_header_quirk"] is quirk
        assert recs["subgraph_conv1"].samples_ms == [11.461, 11.539]  # average column, one per CU
        assert recs["subgraph_conv1"].extra["runs"] == 1291 and recs["subgraph_conv1"].extra["max_ms"] == 34.191
        assert recs["subgraph_fc"].samples_ms == [0.120] and recs["subgraph_fc"].extra["workload_gop"] == 0.002
        assert [s.name for s in parsed.skipped] == ["vart::TensorBuffer::copy_tensor_buffer"]
    no_commas = "\n".join(ln.rstrip(",") for ln in CSV_TEXT.splitlines())
    assert len(VaitraceCsvFormat().parse(_w(tmp_path, no_commas, "nc.csv")).records) == 2


@pytest.mark.parametrize("fmt, text, expected", [
    ("vaitrace-txt", lambda t: t.replace(" | 0.022 |", " | 0.022"), "bad.txt:2: expected 11 cells separated by ' | '"),
    ("vaitrace-txt", lambda t: t.replace("0.106", "fast"), "bad.txt:2: expected a number for runtime_ms, got 'fast'"),
    ("vaitrace-txt", lambda t: t.splitlines()[0] + "\n", "bad.txt:2: expected at least one row under the header of line 1"),
    ("vaitrace-txt", lambda t: "", "bad.txt: the file is empty"),
    ("vaitrace-csv", lambda t: t.replace("11.461,", "11.461,extra,"), "bad.txt:7: expected 10 fields (DPU row) or 6"),
    ("vaitrace-csv", lambda t: t.replace("0.120", "n/a"), "bad.txt:9: expected a number for average time, got 'n/a'"),
    ("vaitrace-csv", lambda t: t.replace("0.010,0.120", "0.900,0.120"), "bad.txt:9: expected times min <= avg <= max"),
    ("vaitrace-csv", lambda t: "\n".join(t.splitlines()[:6]), "bad.txt:7: expected at least one DPU row"),
])
def test_malformed_vaitrace_rejected_whole(tmp_path: Path, fmt: str, text, expected: str) -> None:
    src = TXT.read_text() if fmt == "vaitrace-txt" else CSV_TEXT
    good = _w(tmp_path, src, "good.txt")
    bad = _w(tmp_path, text(src), "bad.txt")
    with Store(tmp_path / "s.sqlite") as st:
        with pytest.raises(IngestError) as err:
            ingest(st, IngestOptions(fmt=fmt, files=[good, bad], device="vck190"))
        assert str(err.value).startswith(expected), str(err.value)
        assert st.summary()["measurements"] == 0
