"""DNNDK parser on the real ProxylessNAS-mobile log and variants derived from it."""
from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.errors import IngestError
from hwnas.profilers.ingest import IngestOptions, ingest
from hwnas.profilers.ingest.dnndk import DnndkFormat
from hwnas.store import Store

DATA = Path(__file__).resolve().parents[2] / "data" / "fpga"
LOG = DATA / "dnndk_proxylessmobile05.log"


def _lines() -> list[str]:
    return LOG.read_text().splitlines()


def _write(tmp_path: Path, lines: list[str], name: str = "dnndk_x.log") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_real_log_values_and_all_row() -> None:
    parsed = DnndkFormat().parse(LOG)
    recs = {r.name: r for r in parsed.records}
    assert len(parsed.records) == 42 and parsed.notes["tables"] == 1
    assert recs["proxylessmobile05_conv_1"].samples_ms == [0.134]
    assert recs["proxylessmobile05_conv_1"].extra["workload_mop"] == 14.451
    assert recs["proxylessmobile05_conv_1"].extra["utilization_pct"] == 8.8
    assert recs["proxylessmobile05_conv_61"].samples_ms == [0.170]
    assert recs["proxylessmobile05_fc_1"].samples_ms == [0.235]
    assert recs["proxylessmobile05_fc_1"].extra["mb_per_s"] == 5278.4
    # The All row (207.171 MOP, 3.279 ms) equals the per-layer sums within rounding.
    assert sum(r.samples_ms[0] for r in parsed.records) == pytest.approx(3.279, abs=0.0005 * 43)
    assert sum(r.extra["workload_mop"] for r in parsed.records) == pytest.approx(207.171, abs=0.0005 * 43)


def test_several_tables_are_averaged(tmp_path: Path) -> None:
    lines = _lines()
    second = [ln.replace("0.134", "0.136").replace("3.279", "3.281") for ln in lines]
    parsed = DnndkFormat().parse(_write(tmp_path, lines + second + lines))
    conv1 = next(r for r in parsed.records if r.name == "proxylessmobile05_conv_1")
    assert parsed.notes["tables"] == 3 and conv1.samples_ms == [0.134, 0.136, 0.134]
    assert len(parsed.records) == 42


def test_two_decimals_and_truncated_left_aligned_names(tmp_path: Path) -> None:
    out = []
    for ln in _lines():
        toks = ln.split()
        if toks and toks[0].isdigit() and len(toks) == 8:
            name = toks[1] if toks[0] != "3" else "proxylessmobile05_con*"
            nums = [f"{float(t.rstrip('%')):.2f}" + ("%" if t.endswith("%") else "") for t in toks[2:]]
            ln = f"{toks[0]:>4} {name:<30} " + " ".join(nums)
        elif toks[:1] == ["All"]:
            ln = " " * 30 + "All " + " ".join(f"{float(t.rstrip('%')):.2f}" for t in toks[1:])
        out.append(ln)
    parsed = DnndkFormat().parse(_write(tmp_path, out))
    names = [r.name for r in parsed.records]
    assert names[2] == "proxylessmobile05_con*"
    assert parsed.records[0].samples_ms == [0.13]
    assert parsed.records[2].samples_ms == [0.17]


@pytest.mark.parametrize("mutate, expected", [
    (lambda ls: ls[:20], "dnndk_x.log:20: expected an 'All' row closing the table of line 4"),
    (lambda ls: [ln.replace("0.173", "abc") for ln in ls], "dnndk_x.log:7: expected 6 numeric columns after the name, got 'abc'"),
    (lambda ls: [ln.replace("  2550.7", "") for ln in ls], "dnndk_x.log:5: expected an ID, a name and 6 numeric columns, got 7 field(s)"),
    (lambda ls: [ln.replace("3.279", "4.279") for ln in ls], "dnndk_x.log:49: expected the All row runtime (ms) to equal the sum of the 42 layers"),
    (lambda ls: ["   "], "dnndk_x.log: the file is empty"),
    (lambda ls: ls[:3], "dnndk_x.log: expected at least one DNNDK profile table"),
])
def test_malformed_logs_are_rejected_and_store_nothing(tmp_path: Path, mutate, expected: str) -> None:
    bad = _write(tmp_path, mutate(_lines()))
    with Store(tmp_path / "s.sqlite") as st:
        with pytest.raises(IngestError) as err:
            ingest(st, IngestOptions(fmt="dnndk", files=[LOG, bad], device="zcu102-dpu-b4096"))
        assert str(err.value).startswith(expected)
        assert st.summary()["measurements"] == 0 and st.summary()["primitives"] == 0


def test_ingest_with_mapping_and_opaque_layers(tmp_path: Path) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text('proxylessmobile05_conv_1: "conv c3>16 224x224 k3 s2 relu6"\n'
                       "proxylessmobile05_fc_1: {op: fc, c_in: 1280, c_out: 1000, h: 1, w: 1}\n")
    with Store(tmp_path / "s.sqlite") as st:
        rep = ingest(st, IngestOptions(fmt="dnndk", files=[LOG], device="zcu102-dpu-b4096", mapping=mapping))
        dev = st.find_device("zcu102-dpu-b4096")
        assert dev["info"]["kind"] == "offline" and dev["info"]["precision"] == "int8"
        table = st.table(dev["id"], "dnndk")
        assert table["conv c3>16 224x224 k3 s2 relu6"] == 0.134
        assert table["fc c1280>1000 1x1 k1 s1"] == 0.235
        assert table["dpu_layer c1>1 1x1 k1 s1 layer=proxylessmobile05_conv_3"] == 0.063
        assert len(table) == 42 and rep.to_dict()["stored"] == 42
    with Store(tmp_path / "s2.sqlite") as st:
        rep = ingest(st, IngestOptions(fmt="dnndk", files=[LOG], device="d", mapping=mapping, unmapped="skip"))
        assert rep.to_dict()["stored"] == 2 and len(rep.skipped) == 40
