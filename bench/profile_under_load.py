"""Do profiled cost models survive a busy machine?

Profiles the mbv2 space (224 px, 100 sampled networks end to end and block by block)
while this bench runs CPU-bound competitor processes (two by default: on a 2-core
machine the profiler then shares its core), once WITH protection (the default timing
protocol: thread-CPU-time estimator, interference evidence, flags) and once WITHOUT
(the median of wall-clock samples, as hwnas did before), plus a second, independent
measurement of every primitive under each setting. Reports, per setting:

* the cost models fitted on 70 networks, scored on the 30 held out: share within ±10%
  (goal >= 95%), beside the naive sum of primitives;
* primitive repeatability: share of primitives whose two measurements agree within 5%
  (goal >= 85%);
* the estimators side by side (median, min, low percentiles, clean repeats, CPU time),
  computed from the same samples, which is how the default estimator was chosen;
* the interference evidence (CPU share of timed repeats, others' CPU use, flags).

Optionally (``--idle``) the same protected run without competitors, for reference.

Timing-sensitive: run it alone (alone on the machine; its own competitors are
the experiment). Resumable: every phase profiles into a store under ``--work``, and each
invocation stops after ``--max-minutes``; run the same command again until it prints the
table and writes the JSON (default bench/results/profile_under_load.json).

    python bench/profile_under_load.py --max-minutes 18
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from hwnas import registry
from hwnas.config import build_space, parse_kv
from hwnas.cost_models.data import CostData, from_store
from hwnas.cost_models.fitting import fit_and_report
from hwnas.errors import HwnasError
from hwnas.profilers.request import ProfileRequest
from hwnas.profilers.runner import ProfileJob
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import Store
from hwnas.ui import format_table

ROOT = Path(__file__).resolve().parent
REPEAT_TOL = 0.05
COMPETITOR = """
import numpy as np
a = np.random.default_rng(0).random((256, 256))
while True:
    a = (a @ a) / 256.0
"""
#: (name, estimator, with competitors, networks?) — the protected setting is the default protocol.
PHASES = (("loaded_protected", None, True, True), ("loaded_protected_rep", None, True, False),
          ("loaded_unprotected", "median", True, True), ("loaded_unprotected_rep", "median", True, False),
          ("idle_protected", None, False, True))
SETTINGS = {"protected": ("loaded_protected", "loaded_protected_rep"),
            "unprotected": ("loaded_unprotected", "loaded_unprotected_rep")}


@contextlib.contextmanager
def competitors(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` CPU-bound single-thread processes for the duration of the block."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", COMPETITOR], env=env) for _ in range(n)]
    try:
        time.sleep(1.0)  # let them reach their loops
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def protocol(estimator: str | None) -> TimingProtocol:
    return TimingProtocol() if estimator is None else TimingProtocol(estimator=estimator)


def run_phases(args: argparse.Namespace, work: Path, state: dict[str, Any]) -> bool:
    """Profile the phases not yet complete, within ``--max-minutes``; True when all are."""
    space = build_space(args.space, parse_kv(args.space_opt, "--space-opt"))
    stop = time.monotonic() + args.max_minutes * 60
    for name, estimator, loaded, with_nets in PHASES:
        if name in state["done"] or (name.startswith("idle") and not args.idle):
            continue
        left = stop - time.monotonic()
        if left < 30:
            return False
        sys.stdout.write(f"phase {name}: {'with' if loaded else 'without'} {args.competitors if loaded else 0} "
                         f"competitor(s), estimator {protocol(estimator).estimator}, up to {left / 60:.1f} min\n")
        t0 = time.perf_counter()
        with competitors(args.competitors if loaded else 0), Store(work / f"{name}.sqlite") as st:
            s = ProfileJob(st, space, ProfileRequest(backends=(args.backend,), protocol=protocol(estimator),
                                                     networks=args.networks if with_nets else 0, seed=args.seed,
                                                     deadline_s=left, show_progress=False)).run()
        b = s.backends[0]
        info = state["phases"].setdefault(name, {"wall_s": 0.0, "warnings": []})
        info["wall_s"] += time.perf_counter() - t0
        info["warnings"] += s.warnings()
        state_file(work).write_text(json.dumps(state, indent=1))
        if b.left:
            return False
        state["done"].append(name)
        state_file(work).write_text(json.dumps(state, indent=1))
    return True


def state_file(work: Path) -> Path:
    return work / "state.json"


def estimator_data(path: Path, estimator: str, *, exclude_flagged: bool = False) -> CostData:
    """Networks, targets and primitive table made with one estimator's value of each row
    (every estimator is stored in the evidence), in the order ``fit-cost`` uses."""
    with Store(path, readonly=True) as st:
        def value(r: dict[str, Any]) -> float:
            return float(r["evidence"]["estimates"][estimator])

        prim = st.query(kind="primitive", ok_only=True, latest=True, exclude_flagged=exclude_flagged)
        table = {r["target"]: value(r) for r in prim}
        nets, y = [], []
        for r in st.query(kind="network", ok_only=True, latest=True, exclude_flagged=exclude_flagged):
            net = st.network(r["target"])
            if all(p.key in table for p in net.nodes):
                nets.append(net)
                y.append(value(r))
    return CostData(nets, np.asarray(y), table, "latency", "ms", {"source": str(path), "estimator": estimator})


def fit(data: CostData, models: str, seed: int) -> dict[str, Any]:
    rep = fit_and_report(data, models, test_frac=0.3, seed=seed, plots=False)
    rows = {r["model"]: r for r in rep["rows"]}
    learned = {m: r for m, r in rows.items() if m != "lut"}
    best = min(learned, key=lambda m: learned[m]["rel_rmse"])
    return {"n_train": rep["n_train"], "n_test": rep["n_test"], "best_model": best,
            "best_within_10": rows[best]["within_10"], "naive_within_10": rows["lut"]["within_10"],
            "within_10": {m: r["within_10"] for m, r in rows.items()},
            "rel_rmse": {m: r["rel_rmse"] for m, r in rows.items()}}


def repeatability(a: Path, b: Path, estimator: str | None) -> dict[str, Any]:
    """Share of primitives whose values in two independent stores agree within 5%."""
    def values(path: Path) -> dict[str, float]:
        with Store(path, readonly=True) as st:
            rows = st.query(kind="primitive", ok_only=True, latest=True)
        return {r["target"]: float(r["latency_ms"] if estimator is None else r["evidence"]["estimates"][estimator])
                for r in rows}

    va, vb = values(a), values(b)
    rel = [abs(va[k] - vb[k]) / ((va[k] + vb[k]) / 2) for k in sorted(set(va) & set(vb)) if va[k] + vb[k] > 0]
    return {"n": len(rel), "within_5": round(100.0 * sum(r <= REPEAT_TOL for r in rel) / len(rel), 2),
            "median_rel_diff": round(100.0 * statistics.median(rel), 2)}


def evidence_summary(path: Path) -> dict[str, Any]:
    with Store(path, readonly=True) as st:
        rows = st.query(ok_only=True, latest=True)
    ev = [r["evidence"] for r in rows]

    def med(key: str) -> float | None:
        xs = [e[key] for e in ev if isinstance(e.get(key), (int, float))]
        return round(statistics.median(xs), 4) if xs else None

    return {"rows": len(rows), "flagged": sum(1 for r in rows if r["flagged"]), "median_cpu_share": med("cpu_share"),
            "median_others_cpu": med("others_cpu"), "median_steal": med("steal"),
            "median_repeats": med("repeats")}


def evaluate(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every figure of the report, from the finished stores."""
    estimators = [e.name for e in registry.list("estimator")]
    out: dict[str, Any] = {}
    for setting, (main_store, rep_store) in SETTINGS.items():
        path, rep = work / f"{main_store}.sqlite", work / f"{rep_store}.sqlite"
        with Store(path, readonly=True) as st:
            data = from_store(st, "cpu", args.backend)
            try:
                clean = fit(from_store(st, "cpu", args.backend, exclude_flagged=True), "lut,linear1,linear2", args.seed)
            except HwnasError as exc:  # too few unflagged networks to fit
                clean = {"error": str(exc)}
        out[setting] = {
            "estimator": protocol(dict((p[0], p[1]) for p in PHASES)[main_store]).estimator,
            "cost_models": fit(data, "all", args.seed),
            "cost_models_exclude_flagged": clean,
            "repeatability": repeatability(path, rep, None),
            "evidence": evidence_summary(path),
            "estimators": {e: {"cost_models": fit(estimator_data(path, e), "lut,linear1,linear2", args.seed),
                               "repeatability": repeatability(path, rep, e)} for e in estimators},
        }
    if args.idle:
        idle = work / "idle_protected.sqlite"
        out["idle"] = {"estimators": {e: fit(estimator_data(idle, e), "lut,linear1,linear2", args.seed)
                                      for e in estimators}, "evidence": evidence_summary(idle)}
        with Store(idle, readonly=True) as st:
            out["idle"]["cost_models"] = fit(from_store(st, "cpu", args.backend), "all", args.seed)
    return out


def render(res: dict[str, Any]) -> str:
    rows = []
    for setting in ("protected", "unprotected"):
        r = res["settings"][setting]
        rows.append({"setting": setting, "estimator": r["estimator"], "best_model": r["cost_models"]["best_model"],
                     "within_10%": r["cost_models"]["best_within_10"], "naive_within_10%":
                     r["cost_models"]["naive_within_10"], "repeat_within_5%": r["repeatability"]["within_5"],
                     "flagged": r["evidence"]["flagged"], "cpu_share": r["evidence"]["median_cpu_share"]})
    est = []
    for e, v in res["settings"]["protected"]["estimators"].items():
        u = res["settings"]["unprotected"]["estimators"][e]
        est.append({"estimator": e, "linear2_within_10% (prot. run)": v["cost_models"]["within_10"]["linear2"],
                    "repeat_within_5% (prot. run)": v["repeatability"]["within_5"],
                    "linear2_within_10% (unprot. run)": u["cost_models"]["within_10"]["linear2"],
                    "repeat_within_5% (unprot. run)": u["repeatability"]["within_5"]})
    return format_table(rows) + "\n\nestimators on the same samples:\n" + format_table(est)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="mbv2")
    ap.add_argument("--space-opt", action="append", metavar="KEY=VALUE", default=None,
                    help="space option (default: the mbv2 defaults, 224 px, width 1.0)")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--networks", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--competitors", type=int, default=2, help="CPU-bound competitor processes (default 2)")
    ap.add_argument("--idle", action="store_true", help="also profile without competitors, for reference")
    ap.add_argument("--max-minutes", type=float, default=18.0, help="stop profiling after this; rerun to resume")
    ap.add_argument("--work", default=str(ROOT.parent / "runs" / "profile_under_load"),
                    help="where the stores live between invocations")
    ap.add_argument("--out", default=str(ROOT / "results" / "profile_under_load.json"))
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    state = json.loads(state_file(work).read_text()) if state_file(work).exists() else {"done": [], "phases": {}}
    if not run_phases(args, work, state):
        sys.stdout.write(f"not finished; run the same command again to resume ({', '.join(state['done']) or 'none'}"
                         " done)\n")
        return 3
    res = {"space": args.space, "space_options": build_space(args.space, parse_kv(args.space_opt, "--space-opt"))
           .options_dict(), "networks": args.networks, "test_frac": 0.3, "competitors": args.competitors,
           "cpu_count": os.cpu_count(), "timing": {"protected": TimingProtocol().to_dict(),
                                                   "unprotected": protocol("median").to_dict()},
           "phases": state["phases"], "settings": evaluate(args, work)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, sort_keys=True))
    sys.stdout.write(render(res) + f"\n(goals: within_10% >= 95, repeat_within_5% >= 85) -> {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
