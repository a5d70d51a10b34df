"""The shipped kernel predictor: ``asset:kernel-cpu-ort``, built by ``make kernel-asset``.

Why an asset: ``hwnas predict --onnx model.onnx`` should answer on a fresh install without a
kernel job first. The predictor is a measurement of one machine class (the one the test
suite runs on: ONNX Runtime's CPU provider, 1 thread), so its manifest carries the device
fingerprint and runtime versions it was built with, the kernel job's options, how many
networks and kernels it learnt from, its held-out figures, the wall time of every phase,
the load average around the build and the date. Where the current machine's fingerprint
differs, :func:`mismatch_line` says which fields and the command that builds one here.

Building is one command and resumable (the kernel job's store lives in ``--work``):

    python -m hwnas.assets.kernel_asset [--work build/kernel-asset] [--time-limit 300]

A kernel predictor folder is a cost-model folder (``fit-cost --model kernel``), so the asset
is of kind ``cost_model`` with ``predictor: kernel`` in its manifest; it is saved like every
cost model (JSON + a ``state_dict`` of tree arrays, no pickle).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas import __version__
from hwnas.assets import DATA_DIR
from hwnas.assets import recipes as R
from hwnas.nn.kernels.synthetic import MAX_MACS, RESOLUTIONS
from hwnas.ui import emit

log = logging.getLogger("hwnas.assets.kernel_asset")

#: The shipped kernel predictor that ``hwnas predict --onnx/--torch`` uses without --predictor.
NAME = "kernel-cpu-ort"
DEFAULT_REF = f"asset:{NAME}"
#: Device fields that decide whether a kernel predictor fits this machine (the runtime that
#: executes the kernels is ONNX Runtime; torch and tvm versions do not change its kernels).
COMPARED = ("kind", "cpu_model", "cores", "threads", "governor", "gpu_name", "precision")


@dataclass(frozen=True)
class KernelAssetRequest:
    """How the asset is built: the kernel job's options (most networks, rounds, seed, time
    limit, stop rule, size of a random network) and a note for the provenance (e.g. that
    the machine was loaded)."""

    networks: int = 1200
    rounds: int = 6
    seed: int = 0
    time_limit_s: float | None = 300.0
    stop_mape: float = 0.04
    stop_min_networks: int = 20
    note: str = ""
    max_macs: float = MAX_MACS
    max_resolution: int = RESOLUTIONS[-1]
    #: block-family emphasis of every round (empty: all families alike)
    weights: Mapping[str, float] = field(default_factory=dict)
    #: the timing protocol (None: the kernel job's own)
    protocol: Any = None


def build_command(store: str = "kernels.sqlite", out: str = "my-kernel-predictor") -> str:
    """The commands that build a kernel predictor for the machine they run on."""
    return (f"hwnas profile --kernels 1200 --rounds 6 --time-limit 300 --store {store} && "
            f"hwnas fit-cost --model kernel --store {store} --device cpu --out {out}")


def fingerprint_differences(shipped: Mapping[str, Any], here: Mapping[str, Any]) -> list[str]:
    """``field: asset X, here Y`` for each compared field (and the onnxruntime version) that differs."""
    out = [f"{k}: asset {shipped.get(k)!r}, here {here.get(k)!r}" for k in COMPARED if shipped.get(k) != here.get(k)]
    a, b = (dict(d.get("runtimes") or {}).get("onnxruntime") for d in (shipped, here))
    if a != b:
        out.append(f"onnxruntime: asset {a!r}, here {b!r}")
    return out


def mismatch_line(label: str, info: Mapping[str, Any], here: Mapping[str, Any]) -> str | None:
    """One line when this machine (``here``) differs from the one a kernel predictor was
    built on (``info``; None when it matches or is unknown): which fields, and what to run."""
    diff = fingerprint_differences(info, here) if info else []
    if not diff:
        return None
    return (f"note: {label} was built on another machine ({'; '.join(diff)}); its latencies are that machine's — "
            f"to build one for this machine run: {build_command()}, then --predictor my-kernel-predictor")


def _job(store: Any, req: KernelAssetRequest) -> dict[str, Any]:
    from hwnas.cost_models.kernel_fit import advise_round
    from hwnas.profilers.kernel_job import KernelSampling, StopRule, kernel_protocol, profile_kernels
    from hwnas.profilers.request import ProfileRequest

    sampling = KernelSampling(rounds=req.rounds, stop=StopRule(req.stop_mape, req.stop_min_networks),
                              max_macs=req.max_macs, max_resolution=req.max_resolution, weights=dict(req.weights))
    s = profile_kernels(store, ProfileRequest(networks=req.networks, seed=req.seed, deadline_s=req.time_limit_s,
                                              protocol=req.protocol), sampling, advisor=advise_round)
    out = {k: v for k, v in s.to_dict().items() if k not in ("errors", "store")}
    out["protocol"] = kernel_protocol(req.protocol).to_dict()
    return out


def build_kernel_asset(work: Path, out: Path, req: KernelAssetRequest, name: str = NAME) -> dict[str, Any]:
    """Run (or resume) the kernel job in ``work``, fit, and write the asset folder ``out/name``."""
    from hwnas.cost_models.kernel_fit import fit_kernel_model
    from hwnas.profilers.fingerprint import device_fingerprint
    from hwnas.store import Store

    work.mkdir(parents=True, exist_ok=True)
    load_before, started = os.getloadavg()[0], _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    with Store(work / "store.sqlite") as st:
        job = _job(st, req)
    job_s = time.perf_counter() - t0
    # The time limit is a normal end (the predictor is built from what was measured; its
    # held-out figures say how good that is); a rerun resumes the job and adds networks.
    job["ended"] = ("every block family accurate" if job["stopped_early"] else
                    "all networks measured" if job["complete"] else "time limit")
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    with Store(work / "store.sqlite", readonly=True) as st:
        dev = job["device_fingerprint"]
        held = fit_kernel_model(st, dev, test_frac=0.2, seed=req.seed)   # the held-out figures
        final = fit_kernel_model(st, dev, test_frac=0.0, seed=req.seed, out=folder)  # the shipped fit: all data
    here = device_fingerprint("cpu", 1)
    phases = {"kernel_job_s": round(job_s, 1), "load_s": final["load_s"], "fit_s": final["fit_s"],
              "held_out_fit_s": held["fit_s"]}
    phases["new_device_s"] = round(job_s + final["load_s"] + final["fit_s"], 1)
    built = {"by": "make kernel-asset (python -m hwnas.assets.kernel_asset)", "hwnas": __version__,
             "date": started.isoformat(timespec="seconds"), "wall_s": phases,
             "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
             "request": asdict(req), "job": job, "fit_params": final["params"]}
    meta = _manifest(name, here, final, held, built)
    R.write_manifest(folder, meta)
    return {"name": name, "path": str(folder), "wall_s": phases, "metrics": meta["metrics"],
            "size_kb": round(sum(f.stat().st_size for f in folder.iterdir()) / 1024, 1)}


def _manifest(name: str, dev: Any, final: Mapping[str, Any], held: Mapping[str, Any],
              built: Mapping[str, Any]) -> dict[str, Any]:
    info = dev.to_dict()
    data, net = final["data"], dict(held.get("held_out_networks") or {})
    sums = dict(held.get("held_out_kernel_sums") or {})
    job = built["job"]
    return {
        "version": 1, "kind": "cost_model", "predictor": "kernel", "space": None, "target": "latency", "unit": "ms",
        "device": f"{info.get('cpu_model')} ({info.get('cores')} cores), ONNX Runtime CPU, 1 thread",
        "fingerprint": dev.fingerprint, "device_info": info, "runtimes": info.get("runtimes"),
        "title": "kernel predictor of ONNX Runtime CPU (1 thread): any ONNX model's latency from its kernels",
        "headline": f"{data['networks']} random networks, held-out MAPE {100 * net.get('mape', float('nan')):.1f}%"
                    f", ±10% {100 * net.get('within_10', float('nan')):.0f}%",
        "description": "hwnas kernel predictors (per kernel family) and this device's fusion rules; `hwnas predict "
                       f"--onnx model.onnx` uses asset:{name} when no --predictor is given.",
        "measured": {"where": f"{info.get('cpu_model')}, {info.get('cores')} cores, fingerprint {dev.fingerprint}",
                     "when": built["date"], "what": f"{data['kernels']} kernels in {data['networks']} random networks "
                     f"of the kernel job (never zoo models), {job['rounds_run']} round(s), ended: {job['ended']}"},
        "provenance": "built with `make kernel-asset` on the machine class the test suite runs on; load average "
                      f"before/after {built['load_average_1min']['before']}/{built['load_average_1min']['after']}"
                      + (f"; {built['request']['note']}" if built["request"]["note"] else ""),
        "licence": "MIT, as hwnas",
        "metrics": {"held_out_networks": net, "held_out_kernel_sums": sums,
                    "held_out_kernel_families": held.get("held_out_kernels") or {},
                    "train_networks": held["n_train"], "test_networks": held["n_test"]},
        "data": {"networks": data["networks"], "kernels": data["kernels"],
                 "networks_with_detection_mismatch": data["networks_with_detection_mismatch"]},
        "built": dict(built),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="build/kernel-asset", help="the kernel job's store lives here (resumable)")
    ap.add_argument("--out", default=str(DATA_DIR), help="asset folder (default: the package's assets/data)")
    ap.add_argument("--name", default=NAME, help="asset name (default %(default)s)")
    d = KernelAssetRequest()
    ap.add_argument("--networks", type=int, default=d.networks, help="most random networks (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=d.rounds, help="adaptive rounds (default %(default)s)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--time-limit", type=float, default=d.time_limit_s,
                    help="the kernel job's time limit in s, 0 for none (default %(default)s; a rerun resumes)")
    ap.add_argument("--stop-mape", type=float, default=d.stop_mape, help="stop rule (default %(default)s)")
    ap.add_argument("--stop-min-networks", type=int, default=d.stop_min_networks)
    ap.add_argument("--note", default="", help="added to the provenance (e.g. 'built under load')")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    req = KernelAssetRequest(a.networks, a.rounds, a.seed, a.time_limit or None, a.stop_mape, a.stop_min_networks,
                             a.note)
    rep = build_kernel_asset(Path(a.work), Path(a.out), req, a.name)
    w = rep["wall_s"]
    emit(rep, as_json=a.json, table=f"built asset:{rep['name']} in {rep['path']} ({rep['size_kb']} kB): kernel job "
         f"{w['kernel_job_s']} s, load {w['load_s']} s, fit {w['fit_s']} s -> a new device's predictor in "
         f"{w['new_device_s']} s (+ {w['held_out_fit_s']} s for the held-out figures)\n"
         + json.dumps(rep["metrics"]["held_out_networks"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
