"""Short generated logs in each format the built-in ingest and power parsers read.

The ingest contract suite needs one valid file per format. Real profiler logs come from
boards the tests cannot reach, so these writers produce small files in exactly the
layouts the parsers document (two DNNDK runs whose ``All`` rows add up, a vaitrace
summary with a CPU-function table, results files naming primitive keys, power logs),
with made-up numbers that satisfy every consistency rule the parsers check.
"""
from __future__ import annotations

import json
from pathlib import Path

from hwnas.primitives import Primitive

#: Primitives the results files name by key (resolvable without a manifest).
RESULT_PRIMITIVES = (Primitive("conv", 8, 8, 8, 8, kernel=3, act="relu"),
                     Primitive("mbconv", 8, 16, 8, 8, kernel=3, stride=2, expansion=3, act="relu6"))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_dnndk(path: Path) -> Path:
    """Two profile tables of one kernel (two runs), each closed by a consistent All row."""
    layers = (("tiny_conv_1", 14.451, 0.34), ("tiny_conv_2", 3.211, 0.29), ("tiny_fc_1", 2.560, 1.24))
    out = []
    for run, times in enumerate(((0.134, 0.063, 0.235), (0.136, 0.061, 0.233))):
        out += ["=" * 80, f'[DNNDK] Performance profile - DPU Kernel "tiny" DPU Task "tiny-{run}"', "=" * 80,
                "  ID                       NodeName Workload(MOP) Mem(MB) RunTime(ms) Perf(GOPS) Utilization    MB/S"]
        for i, ((name, mop, mem), ms) in enumerate(zip(layers, times), start=1):
            out.append(f"{i:4d} {name:>30s} {mop:13.3f} {mem:7.2f} {ms:11.3f} {mop / ms:10.1f} "
                       f"{5.0:11.1f}% {mem / ms * 1000:7.1f}")
        mop, mem, ms = sum(lay[1] for lay in layers), sum(lay[2] for lay in layers), sum(times)
        out += ["", "                Total Nodes In Avg:",
                f"{'All':>35s} {mop:13.3f} {mem:7.2f} {ms:11.3f} {mop / ms:10.1f} {5.0:11.1f}% "
                f"{mem / ms * 1000:7.1f}", "=" * 80]
    return _write(path, "\n".join(out) + "\n")


def write_vaitrace_txt(path: Path) -> Path:
    """A Vitis AI 2.5 summary: DPU table (two subgraphs) and a CPU-function table."""
    rows = ["DPU Id      | Bat | DPU SubGraph        | WL    | SW_RT | HW_RT | Effic | LdWB  | LdFM  | StFM  | AvgBw",
            "DPUCVDX8G_1 | 1   | tiny__conv1__ret_5  | 0.012 | 0.106 | 0.048 | 2.6   | 0.511 | 0.024 | 0.022 | 11568.4",
            "DPUCVDX8G_1 | 1   | tiny__fc__ret_9     | 0.001 | 0.031 | ~0    | 0.4   | 0.101 | 0.004 | 0.001 | 3568.1",
            "",
            "Function                               | Device | Runs | AverageRunTime(ms)",
            "vart::TensorBuffer::copy_tensor_buffer | CPU    | 120  | 0.025",
            "xir::XrtCu::run                        | CPU    | 60   | 0.095"]
    return _write(path, "\n".join(rows) + "\n")


def write_vaitrace_csv(path: Path) -> Path:
    """profile_summary.csv: preamble, DPU Summary block with two DPU rows and a CPU row."""
    rows = ["Profile Summary", "Generated on: 2024-01-01 12:00:00", "", "DPU Summary",
            "Kernel Name,Number Of Runs,CU Full Name,Minimum Time (ms),Average Time (ms),Maximum Time (ms),"
            "Workload(GOP),Effective Perf(GOP/s),Mem IO(MB),Mem Bandwidth(MB/s),",
            "subgraph_conv1,651,DPUCZDX8G_1:batch-1,0.067,0.461,1.191,0.718,673.388,49.947,4357.893,",
            "subgraph_fc,651,DPUCZDX8G_1:batch-1,0.010,0.020,0.031,0.010,500.000,1.000,100.000,",
            "cpu_func,12,CPU,0.101,0.214,0.377,"]
    return _write(path, "\n".join(rows) + "\n")


def write_awnas_yaml(path: Path) -> Path:
    """profiled_blocks.yaml: two inverted-residual entries (one repeated) and a conv."""
    import yaml

    def entry(ptype: str, c: int, c_out: int, k: int, e: int, size: int, stride: int, ms: float) -> dict:
        return {"prim_type": ptype, "C": c, "C_out": c_out, "kernel_size": k, "expansion": e, "spatial_size": size,
                "stride": stride, "affine": True, "performances": {"latency": ms, "power": 6.2e6}}

    data = [entry("mobilenet_v2_block", 16, 16, 3, 4, 56, 1, 0.089),
            entry("mobilenet_v2_block", 16, 16, 3, 4, 56, 1, 0.091),
            entry("mobilenet_v2_block", 24, 32, 5, 6, 28, 2, 0.061),
            entry("conv_3x3", 3, 16, 3, 1, 112, 2, 0.120)]
    return _write(path, yaml.safe_dump(data, sort_keys=True))


def write_results_csv(path: Path) -> Path:
    """hwnas-results v1, CSV form, naming primitive keys (one row failed)."""
    a, b = (p.key for p in RESULT_PRIMITIVES)
    rows = ["# hwnas-results v1", "# backend: example-offline", "name,latency_ms,samples_ms,energy_mj,power_w,error",
            f"{a},0.050,0.050 0.051 0.049,0.10,2.0,", f'{b},,,,,"example: not supported"', f"{b},0.120,,,,"]
    return _write(path, "\n".join(rows) + "\n")


def write_results_json(path: Path) -> Path:
    """hwnas-results v1, JSON form, naming primitive keys."""
    a, b = (p.key for p in RESULT_PRIMITIVES)
    doc = {"format": "hwnas-results", "version": 1, "backend": "example-offline", "settings": {"threads": 1},
           "results": [{"name": a, "latency_ms": 0.05, "samples_ms": [0.05, 0.051, 0.049]},
                       {"name": b, "latency_ms": 0.12, "energy_mj": 0.3}]}
    return _write(path, json.dumps(doc, indent=1))


def write_pat(path: Path, seconds: int = 4) -> Path:
    """Power Advantage Tool CSV: ctime stamps, 17 rails in µW, two samples a second."""
    rows = []
    for t in range(seconds):
        for half in range(2):
            rails = [5_000_000 + 10_000 * (t + half)] + [1_000_000 + 1_000 * r for r in range(16)]
            rows.append(f"Thu Nov 19 21:17:{20 + t:02d} 2020," + ",".join(map(str, rails)))
    return _write(path, "\n".join(rows) + "\n")


def write_hwmon(path: Path, seconds: int = 4) -> Path:
    """``timestamp,power1_input`` (µW) at 4 Hz, epoch seconds."""
    rows = ["timestamp,power1_input"] + [f"{1_600_000_000 + i / 4:.2f},{4_000_000 + 1_000 * i}"
                                         for i in range(4 * seconds)]
    return _write(path, "\n".join(rows) + "\n")


def write_watts(path: Path, seconds: int = 4) -> Path:
    """``timestamp,watts`` with ISO timestamps at 2 Hz."""
    rows = ["timestamp,watts"] + [f"2024-01-01 12:00:{i // 2:02d}.{5 * (i % 2)},{3.5 + 0.01 * i:.3f}"
                                  for i in range(2 * seconds)]
    return _write(path, "\n".join(rows) + "\n")
