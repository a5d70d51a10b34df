"""One-command GPU check (``make gpu-check``): the GPU tests, a CUDA profile of ``mbv2``, the
cost models fitted on it, and one JSON with the figures that say whether it all works.

Why one script: a GPU machine is lent rarely and briefly, so everything a GPU must show runs
in one prepared call — the ``gpu``-marked tests, the whole ``mbv2`` primitive table plus sample
networks measured with ONNX Runtime (CUDA provider, I/O binding) and torch (CUDA events), then
``hwnas fit-cost --model all`` (by default) on the ONNX Runtime rows — and writes
``bench/results/gpu_check.json``: whole-table wall time, the best model's share of held-out
networks within ±10 %, and its RMSE gain over the naive per-primitive sum (the paper's Fig. 4
reports 3.6×).

``--device cpu`` runs the same pipeline on the CPU (the GPU tests are skipped): that is how
the pipeline itself is tested on machines without CUDA. Every step is a subprocess of this
interpreter (``python -m hwnas.cli``), with argument lists, never a shell string.

    python bench/gpu_check.py                  # on a CUDA machine (make gpu-check installs first)
    python bench/gpu_check.py --device cpu --networks 12 --space-opt kernels=[3] ...
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: The paper's figure for the best model's RMSE gain over the naive sum on GPU latency (Fig. 4).
PAPER_GAIN = 3.6


class CheckFailed(RuntimeError):
    """A step of the check failed: its command and the tail of its output."""


def cuda_status() -> tuple[bool, str]:
    """Whether torch sees a CUDA GPU, and which (or why not), without failing on a CPU build."""
    import torch

    if not torch.cuda.is_available():
        build = "a CPU build of torch" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build, no GPU visible"
        return False, f"no CUDA GPU: torch {torch.__version__} is {build}"
    return True, torch.cuda.get_device_name(0)


def run_step(name: str, argv: Sequence[str], log: list[dict[str, Any]], *, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run one step, record its wall time and exit status; raise with the output's tail on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log.append({"step": name, "argv": list(argv), "rc": proc.returncode, "wall_s": round(wall, 2)})
    print(f"  {name:<10} rc={proc.returncode} {wall:7.1f} s", flush=True)
    if proc.returncode not in ok_codes:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise CheckFailed(f"{name} failed (exit {proc.returncode}): {' '.join(argv)}\n{tail}")
    return proc.stdout


def hwnas(*args: str) -> list[str]:
    return [sys.executable, "-m", "hwnas.cli", *args]


def only_device(store: Path) -> str:
    """The one device the fresh store holds (the check measures on exactly one)."""
    from hwnas.store import Store

    with Store(store, create=False, readonly=True) as st:
        devices = st.devices()
    if len(devices) != 1:
        raise CheckFailed(f"{store}: expected one measured device, found {len(devices)}")
    return str(devices[0]["id"])


def summarise_fit(report: dict[str, Any]) -> dict[str, Any]:
    """Best model (lowest held-out RMSE, naive sum excluded), its ±10 % share and its RMSE gain
    over the naive sum (``lut``), from ``hwnas fit-cost --json``'s report (whose rows give
    relative metrics in per cent)."""
    rows = {r["model"]: r for r in report["rows"]}
    if "lut" not in rows:
        raise CheckFailed("fit-cost report has no naive-sum ('lut') row to compare against")
    fitted = [r for name, r in rows.items() if name != "lut" and r.get("rmse") is not None]
    if not fitted:
        raise CheckFailed("fit-cost report has no fitted model besides the naive sum")
    best = min(fitted, key=lambda r: r["rmse"])
    lut = rows["lut"]
    return {"best_model": best["model"], "best_rmse_ms": best["rmse"], "best_within_10_pct": best["within_10"],
            "lut_rmse_ms": lut["rmse"], "lut_within_10_pct": lut["within_10"],
            "rmse_gain_vs_naive_sum": round(lut["rmse"] / best["rmse"], 2) if best["rmse"] > 0 else None,
            "paper_gain": PAPER_GAIN, "n_train": report.get("n_train"), "n_test": report.get("n_test")}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu", help="gpu (default) or cpu to test the pipeline")
    p.add_argument("--networks", type=int, default=100, help="sample networks to measure (default %(default)s)")
    p.add_argument("--space-opt", action="append", default=[], metavar="K=V", help="mbv2 space option (repeatable)")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "gpu-check", help="store and model folder")
    p.add_argument("--out", type=Path, default=RESULTS / "gpu_check.json")
    p.add_argument("--model", default="all", help="cost models to fit (fit-cost --model; default %(default)s)")
    p.add_argument("--require-gpu", action="store_true",
                   help="fail (exit 2) without a CUDA GPU instead of printing 'skipped:' (make gpu-check sets it)")
    p.add_argument("--skip-tests", action="store_true", help="do not run the gpu-marked tests")
    return p.parse_args(argv)


def profile_argv(args: argparse.Namespace, store: Path, backend: str) -> list[str]:
    opts = [a for o in args.space_opt for a in ("--space-opt", o)]
    return hwnas("profile", "--space", "mbv2", *opts, "--device", args.device, "--backend", backend,
                 "--networks", str(args.networks), "--store", str(store))


def check(args: argparse.Namespace) -> dict[str, Any]:
    """Every step in order; the figures at the end. Raises CheckFailed with the step's output."""
    has_cuda, what = cuda_status()
    if args.device == "gpu" and not has_cuda:
        raise CheckFailed(f"gpu-check needs a CUDA GPU ({what}); --device cpu tests the pipeline on the CPU")
    args.work.mkdir(parents=True, exist_ok=True)
    store = args.work / "store.sqlite"
    log: list[dict[str, Any]] = []
    out: dict[str, Any] = {"device": args.device, "gpu": what if has_cuda else None, "networks": args.networks,
                           "space_options": args.space_opt, "steps": log}
    if not args.skip_tests:
        # exit 5: nothing collected/selected is fine on a CPU pipeline run
        run_step("gpu tests", [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests"], log, ok_codes=(0, 5))
    run_step("profile", profile_argv(args, store, "onnxruntime"), log)
    out["table_wall_s"] = log[-1]["wall_s"]
    run_step("torch", profile_argv(args, store, "torch"), log)
    device = only_device(store)
    fit = run_step("fit-cost", hwnas("fit-cost", "--store", str(store), "--device", device, "--backend", "onnxruntime",
                                     "--model", args.model, "--out", str(args.work / "models"), "--json"), log)
    out["fit"] = summarise_fit(json.loads(fit))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "gpu" and not args.require_gpu:
        has_cuda, what = cuda_status()
        if not has_cuda:  # `make bench` on a CPU machine: a skip, not a failure
            print(f"skipped: {what}")
            return 0
    print(f"gpu-check on {args.device}:", flush=True)
    try:
        res = check(args)
    except CheckFailed as exc:
        print(f"gpu-check: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    f = res["fit"]
    print(f"\n{'figure':<34} value\n{'-' * 50}")
    for k, v in (("device", res["gpu"] or "cpu"), ("whole-table profile wall (s)", res["table_wall_s"]),
                 ("best model", f["best_model"]), ("best model within ±10%", f"{f['best_within_10_pct']:.1f}%"),
                 ("naive sum within ±10%", f"{f['lut_within_10_pct']:.1f}%"),
                 ("RMSE gain vs naive sum", f"{f['rmse_gain_vs_naive_sum']}x (paper Fig. 4: {PAPER_GAIN}x)")):
        print(f"{k:<34} {v}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
