"""Benchmark: FBNet's latency-aware search at several latency-loss weights; the derived
networks' *measured* latency should fall as the weight rises, at some cost in accuracy.

Why: a differentiable latency loss is only useful if the latency it optimises is the one
the device shows. The loss uses a cost model (the naive per-block lookup table fitted
from this machine's ONNX Runtime measurements); the check measures each derived network
end to end with ONNX Runtime, which the search never saw.

Phases (each resumable; run the timing phases alone on the machine; the
training phases may share it):

* ``profile``  (quiet)  profile the space's blocks (+ a few networks) with ONNX Runtime and fit
  the ``lut`` cost model into ``bench/results/fbnet-cpu-lut`` (what fbnet-latency-cpu.yaml reads);
* ``search``   (shared) one FBNet search per weight (configs/fbnet-latency-cpu.yaml, objective.b = w);
* ``measure``  (quiet)  ONNX Runtime latency of every derived network (batch 1, 1 thread);
* ``train``    (shared) train each derived network (run.train) and test it;
* ``report``   table, JSON (bench/results/fbnet_sweep.json) and PNG (bench/results/fbnet_sweep.png).

    .venv/bin/python bench/fbnet_sweep.py --phase profile
    .venv/bin/python bench/fbnet_sweep.py --phase search
    .venv/bin/python bench/fbnet_sweep.py --phase measure
    .venv/bin/python bench/fbnet_sweep.py --phase train
    .venv/bin/python bench/fbnet_sweep.py --phase report
    .venv/bin/python bench/fbnet_sweep.py                  # every phase in turn (make bench)
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONFIG = ROOT / "configs" / "fbnet-latency-cpu.yaml"
MODEL = RESULTS / "fbnet-cpu-lut"


def load_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {"runs": {}}


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))


def base_config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def space_options() -> dict[str, Any]:
    return {k: v for k, v in base_config()["search_space"].items() if k != "type"}


def protocol(sessions: int = 1) -> Any:
    from hwnas.profilers.timing import TimingProtocol

    return TimingProtocol(warmup=3, min_repeats=5, max_repeats=30, min_time_ms=2.0, threads=1, time_budget_s=1.0,
                          sessions=sessions)


def phase_profile(work: Path) -> None:
    from hwnas.cost_models.api import fit_cost, load_data
    from hwnas.cost_models.data import DataRequest
    from hwnas.profilers.api import ProfileRequest, profile_space

    store = work / "fbnet.sqlite"
    summary = profile_space("fbnet", space_options(), store, ProfileRequest(protocol=protocol(), networks=12, seed=0))
    print(f"profiled {summary.n_primitives} blocks, {summary.n_networks} networks in {summary.wall_s:.0f} s")
    data = load_data(DataRequest(store=store, device=summary.device_fingerprint, backend="onnxruntime"))
    report = fit_cost(data, "lut", out=work / "models", test_frac=0.5)
    shutil.rmtree(MODEL, ignore_errors=True)
    shutil.copytree(work / "models" / "lut", MODEL)
    print(json.dumps({k: v for k, v in report.items() if k != "models"}, default=str)[:400])


def run_config(work: Path, w: float) -> Path:
    cfg = base_config()
    cfg["objective"]["b"] = float(w)
    cfg["objective"]["model"] = str(MODEL)
    path = work / f"w{w:g}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def phase_search(work: Path, weights: list[float], state: dict[str, Any]) -> None:
    from hwnas.search.api import derive_archs, run_search

    for w in weights:
        run_dir = work / f"run-w{w:g}"
        out = run_search(run_config(work, w), run_dir=run_dir)
        best = derive_archs(run_dir, top=1)[0]
        state["runs"][f"{w:g}"] = {"weight": w, "arch": best["arch_str"], "search_s": out["seconds"],
                                   "predicted_ms": best["perfs"].get("latency_ms"),
                                   "expected_ms": best["perfs"].get("expected_latency_ms"),
                                   "entropy": out["entropy"], "run_dir": str(run_dir)}
        print(f"w={w:g}: {best['arch_str']}  predicted {best['perfs'].get('latency_ms'):.4g} ms")


def phase_measure(state: dict[str, Any], sessions: int) -> None:
    from hwnas import registry
    from hwnas.config import build_space

    space = build_space("fbnet", space_options())
    backend = registry.get("backend", "onnxruntime")(device="cpu", threads=1)
    for rec in state["runs"].values():
        spec = space.to_network(space.from_str(rec["arch"]))
        res = backend.measure(spec, protocol(sessions), with_energy=False)
        rec["measured_ms"] = statistics.median(res.samples_ms)
        rec["measured_samples"] = len(res.samples_ms)
        print(f"w={rec['weight']:g}: measured {rec['measured_ms']:.4g} ms (predicted {rec['predicted_ms']:.4g})")


def phase_train(work: Path, state: dict[str, Any]) -> None:
    from hwnas.config import load_config
    from hwnas.search import final

    for key, rec in state["runs"].items():
        cfg_path = run_config(work, rec["weight"])
        arch = Path(rec["run_dir"]) / "best.yaml"
        out = work / f"train-w{key}"
        summary = final.train(load_config(cfg_path), final.read_arch_file(arch), out,
                              control=final.TrainControl(resume=(out / final.CHECKPOINT).exists()))
        res = final.test_files(cfg_path, arch, out / final.CHECKPOINT)
        rec.update(test_accuracy=res["test_accuracy"], epochs=summary["epochs_done"])
        print(f"w={rec['weight']:g}: test accuracy {res['test_accuracy']:.4f}")


def phase_report(state: dict[str, Any], png: Path) -> dict[str, Any]:
    from hwnas.ui import format_table

    runs = sorted(state["runs"].values(), key=lambda r: r["weight"])
    print(format_table([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                         if k in ("weight", "predicted_ms", "measured_ms", "test_accuracy", "search_s")} for r in runs]))
    measured = [r.get("measured_ms") for r in runs]
    state["monotonic_measured"] = None if None in measured else all(a > b for a, b in zip(measured, measured[1:]))
    print(f"measured latency falls monotonically with the weight: {state['monotonic_measured']}")
    if None not in measured:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
        xs = [r["weight"] for r in runs]
        ax.plot(xs, measured, "o-", c="#b2182b", label="measured latency (ONNX Runtime)")
        ax.plot(xs, [r["predicted_ms"] for r in runs], "s--", c="#ef8a62", label="cost model (LUT)")
        ax.set_xlabel("latency-loss weight b in CE * a * log(LAT)^b")
        ax.set_ylabel("latency of the derived network (ms)")
        if all("test_accuracy" in r for r in runs):
            ax2 = ax.twinx()
            ax2.plot(xs, [100 * r["test_accuracy"] for r in runs], "^-", c="#2166ac", label="test accuracy")
            ax2.set_ylabel("test accuracy (%)", color="#2166ac")
            ax2.legend(loc="center left", fontsize=8)
        ax.legend(loc="lower left", fontsize=8)
        ax.grid(alpha=0.3)
        ax.set_title("FBNet search on fbnet (digits 16x16): latency weight sweep", fontsize=9)
        fig.tight_layout()
        fig.savefig(png)
        plt.close(fig)
        print(f"wrote {png}")
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase", choices=("all", "profile", "search", "measure", "train", "report"), default="all",
                    help="which phase to run (default: %(default)s, every phase in turn)")
    ap.add_argument("--weights", default="0,1,2,4,8", help="latency-loss weights b (comma-separated)")
    ap.add_argument("--work", default=str(ROOT / "runs" / "fbnet_sweep"), help="run dirs, store, trained models")
    ap.add_argument("--sessions", type=int, default=3, help="measurement sessions per derived network")
    ap.add_argument("--out", default=str(RESULTS / "fbnet_sweep.json"))
    args = ap.parse_args()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    state = load_state(out)
    for phase in ("profile", "search", "measure", "train", "report") if args.phase == "all" else (args.phase,):
        if phase == "profile":
            phase_profile(work)
        elif phase == "search":
            phase_search(work, [float(w) for w in args.weights.split(",")], state)
        elif phase == "measure":
            phase_measure(state, args.sessions)
        elif phase == "train":
            phase_train(work, state)
        else:
            phase_report(state, out.with_suffix(".png"))
        if phase != "profile":
            save_state(out, state)


if __name__ == "__main__":
    main()
