"""What the dashboard knows about search runs: found under one folder, read, never written.

Why its own reader instead of the trainer's: a running search rewrites ``rollouts.csv`` at
every checkpoint, so the dashboard reads it again whenever its size or time changes (and
only then: a page of a 10,000-rollout run must load in well under two seconds), and it
must cope with a half-written folder (a run that has not checkpointed yet) without error.

A run is a folder under the runs root holding ``config.yaml`` or ``rollouts.csv`` (what
``hwnas search`` writes). Runs are addressed by their path relative to the root, looked up
in the listing: a name that is not listed is unknown, so no request can reach outside.
"""
from __future__ import annotations

import csv
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: How deep under the root runs are looked for (runs/NAME, runs/GROUP/NAME, ...).
MAX_DEPTH = 3
#: A run without summary.yaml whose files changed this recently counts as running.
RUNNING_WINDOW_S = 300.0
#: Metrics the front maximises; every other metric column is minimised (latency, energy, loss).
MAXIMISED = ("accuracy", "reward", "top1", "auc", "map", "miou", "bleu")
#: Columns of rollouts.csv that are not metrics.
NOT_METRICS = ("step", "arch_str", "arch", "feasible")


@dataclass
class Rollouts:
    """A run's rollouts.csv, parsed: metric columns as floats (NaN where empty)."""

    columns: list[str]
    steps: list[int]
    arch: list[str]
    feasible: list[bool]
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_rollouts(path: Path) -> Rollouts:
    """Read a rollouts.csv as the trainer writes it (:func:`hwnas.search.report.write_rollouts_csv`)."""
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = [r for r in reader if len(r) == len(header)]
    idx = {c: i for i, c in enumerate(header)}
    metric_cols = [c for c in header if c not in NOT_METRICS]
    out = Rollouts(columns=header, steps=[int(_float(r[idx["step"]])) if "step" in idx else i for i, r in enumerate(rows)],
                   arch=[r[idx["arch_str"]] for r in rows] if "arch_str" in idx else [""] * len(rows),
                   feasible=[r[idx["feasible"]] not in ("0", "False", "false") for r in rows] if "feasible" in idx
                   else [True] * len(rows))
    for c in metric_cols:
        out.metrics[c] = [_float(r[idx[c]]) for r in rows]
    return out


def axes(ro: Rollouts) -> tuple[str | None, str | None]:
    """(x, y) of a run's front: the hardware metric (``*_ms``, ``*_mj``) against accuracy
    (else the reward)."""
    hw = [c for c in ro.metrics if c.endswith(("_ms", "_mj"))]
    y = "accuracy" if "accuracy" in ro.metrics else ("reward" if "reward" in ro.metrics else None)
    return (hw[0] if hw else None), y


def pareto_indices(xs: list[float], ys: list[float], ok: list[bool], *, x_max: bool = False) -> list[int]:
    """Indices of the non-dominated feasible points, x minimised (unless ``x_max``), y
    maximised, in order of x; one point per distinct (x, y). O(n log n)."""
    pts = [(xs[i] if not x_max else -xs[i], -ys[i], i) for i in range(len(xs))
           if ok[i] and math.isfinite(xs[i]) and math.isfinite(ys[i])]
    pts.sort()
    front: list[int] = []
    best = math.inf
    for _x, neg_y, i in pts:
        if neg_y < best:
            front.append(i)
            best = neg_y
    return front


def front_of(ro: Rollouts) -> tuple[str | None, str | None, list[int]]:
    """The run's (x, y, front indices)."""
    x, y = axes(ro)
    if x is None or y is None:
        return x, y, []
    return x, y, pareto_indices(ro.metrics[x], ro.metrics[y], ro.feasible, x_max=x in MAXIMISED)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None


class RunsFolder:
    """The runs under one root, with a cache of parsed rollouts keyed by (size, mtime)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, tuple[tuple[int, int], Rollouts]] = {}
        self._lock = threading.Lock()

    def find(self) -> dict[str, Path]:
        """Run id (relative posix path) -> folder, for every run under the root."""
        found: dict[str, Path] = {}
        self._walk(self.root, 0, found)
        return dict(sorted(found.items()))

    def _walk(self, d: Path, depth: int, found: dict[str, Path]) -> None:
        if depth > MAX_DEPTH:
            return
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        names = {e.name for e in entries}
        if depth > 0 and ("config.yaml" in names or "rollouts.csv" in names):
            real = d.resolve()
            if real == self.root or self.root in real.parents:  # a symlink out of the root is not a run
                found[d.relative_to(self.root).as_posix()] = real
            return
        for e in entries:
            if e.is_dir() and not e.name.startswith("."):
                self._walk(e, depth + 1, found)

    def rollouts(self, run: Path) -> Rollouts:
        """The run's rollouts (empty before its first checkpoint), parsed once per change."""
        f = run / "rollouts.csv"
        try:
            st = f.stat()
        except OSError:
            return Rollouts([], [], [], [])
        key = (st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._cache.get(f)
        if hit is not None and hit[0] == key:
            return hit[1]
        ro = parse_rollouts(f)
        with self._lock:
            self._cache[f] = (key, ro)
        return ro

    def status(self, run: Path) -> dict[str, Any]:
        """Status and progress: step reached (from the rollouts), steps asked (config),
        finished / running / stopped, and what it searched."""
        cfg = _read_yaml(run / "config.yaml") or {}
        trainer = cfg.get("trainer") if isinstance(cfg, dict) else None
        steps = trainer.get("steps") if isinstance(trainer, dict) else None
        ro = self.rollouts(run)
        step = (max(ro.steps) + 1) if ro.steps else 0
        summary = run / "summary.yaml"
        newest = max((p.stat().st_mtime for p in run.iterdir() if p.is_file()), default=0.0)
        csvf = run / "rollouts.csv"
        if summary.is_file() and (not csvf.exists() or summary.stat().st_mtime >= csvf.stat().st_mtime - 1):
            state = "finished"
        elif time.time() - newest < RUNNING_WINDOW_S:
            state = "running"
        else:
            state = "stopped"
        return {"status": state, "step": step, "steps": steps if isinstance(steps, int) else None,
                "rollouts": len(ro), "feasible": sum(ro.feasible), "updated": newest,
                "space": _section_type(cfg, "search_space"), "controller": _section_type(cfg, "controller"),
                "evaluator": _section_type(cfg, "evaluator"), "device": hardware_label(cfg, run)}


def _section_type(cfg: Any, name: str) -> str:
    sec = cfg.get(name) if isinstance(cfg, dict) else None
    return str(sec.get("type", "")) if isinstance(sec, dict) else ""


def hardware_label(cfg: Any, run: Path) -> str:
    """Which device a run's hardware objective prices for: the cost model's device (from its
    manifest), the store's device, or the table's column; '' when it has none."""
    obj = cfg.get("objective") if isinstance(cfg, dict) else None
    if not isinstance(obj, dict):
        return ""
    children = obj.get("objectives") if isinstance(obj.get("objectives"), list) else []
    hws = [c for c in [obj, *children] if isinstance(c, dict) and c.get("type") in ("hardware", "diff_hardware")]
    for h in hws:
        if h.get("model"):
            manifest = _manifest_device(Path(str(h["model"])), run)
            if manifest:
                return manifest
            return Path(str(h["model"])).name
        if h.get("store"):
            return f"{h.get('device') or '?'} / {h.get('backend') or '?'} ({Path(str(h['store'])).name})"
        if h.get("column"):
            return str(h["column"])
    return ""


def _manifest_device(model: Path, run: Path) -> str:
    import json

    path = model if model.is_absolute() else run / model
    try:
        m = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return ""
    dev = m.get("device") or {}
    info = dev.get("info") or {}
    fp = str(dev.get("fingerprint", ""))[:8]
    return f"{dev.get('name', '?')} {info.get('cpu_model') or info.get('gpu_name') or ''} {fp}".strip() \
        if isinstance(dev, dict) else ""


__all__ = ["MAXIMISED", "Rollouts", "RunsFolder", "axes", "front_of", "hardware_label", "pareto_indices",
           "parse_rollouts"]
