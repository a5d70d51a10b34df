"""Search-loop throughput: rollouts per second of each controller with a predictor-only
objective (hardware latency from the published NB201 table, or the naive sum of a
per-primitive store on mbv2), through the real trainer (no run directory).

Goal: >= 1,000 rollouts/s for evolution. Prints a table, writes bench/results/search_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwnas.config import parse_config  # noqa: E402
from hwnas.search.build import build_component, build_components, trainer_config  # noqa: E402
from hwnas.ui import format_table  # noqa: E402

TABLE = ROOT / "tests" / "data" / "nb201_latency_slice.csv.gz"
CONTROLLERS = {
    "random": {"type": "random"},
    "evolution": {"type": "evolution", "population": 50, "sample_size": 10},
    "annealing": {"type": "annealing"},
    "pareto": {"type": "pareto", "population": 40},
    "rl": {"type": "rl"},
}


def mbv2_store(tmp: Path) -> tuple[dict, dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    from search.conftest import fake_store  # the deterministic per-primitive store of the tests

    from hwnas.search.spaces.mbv2 import MBV2Space

    sp = {"type": "mbv2", "resolution": 32, "width": 0.35, "in_channels": 1, "num_classes": 10}
    space = MBV2Space(**{k: v for k, v in sp.items() if k != "type"})
    store = fake_store(tmp / "store.sqlite", space)
    return sp, {"type": "hardware", "store": str(store), "device": "fake-cpu", "backend": "torch"}


def measure(space: dict, objective: dict, controller: dict, rollouts: int, per_step: int) -> dict:
    cfg = parse_config({"seed": 0, "search_space": space, "controller": controller, "evaluator": {"type": "predictor"},
                        "objective": objective,
                        "trainer": {"type": "simple", "steps": rollouts // per_step, "rollouts_per_step": per_step,
                                    "checkpoint_every": 0, "plot": False}})
    comps = build_components(cfg)
    trainer = build_component(trainer_config(cfg), components=comps, run_dir=None)
    comps.objective.values([comps.space.sample(comps.controller.rng)])  # load the table once, outside the clock
    t0 = time.perf_counter()
    out = trainer.run()
    dt = time.perf_counter() - t0
    return {"rollouts": out["rollouts"], "seconds": round(dt, 3), "rollouts_per_s": round(out["rollouts"] / dt, 1),
            "best_latency_ms": out["best"]["perfs"]["latency_ms"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "search_speed.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mb_space, mb_obj = mbv2_store(Path(tmp))
        cases = [("nb201", {"type": "nb201"}, {"type": "hardware", "table": str(TABLE), "column": "gold_6226_ms"}),
                 ("mbv2", mb_space, mb_obj)]
        for space_name, space, objective in cases:
            for name, ctrl in CONTROLLERS.items():
                for per_step in (1, 50):
                    n = 500 if name == "rl" and per_step == 1 else 5000
                    r = measure(space, objective, ctrl, n, per_step)
                    rows.append({"space": space_name, "controller": name, "per_step": per_step, **r})
    print(format_table(rows, ["space", "controller", "per_step", "rollouts", "seconds", "rollouts_per_s",
                              "best_latency_ms"]))
    evo = [r["rollouts_per_s"] for r in rows if r["controller"] == "evolution"]
    print(f"evolution: min {min(evo):.0f} rollouts/s (goal >= 1000): {'met' if min(evo) >= 1000 else 'NOT met'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "python": platform.python_version(), "machine": platform.machine(),
                               "cpus": os.cpu_count(), "goal_rollouts_per_s": 1000}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
