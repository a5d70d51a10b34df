"""What a search leaves in its run directory, and how to read it back.

``rollouts.csv`` (every rollout with its perfs), ``pareto.yaml`` (the feasible
non-dominated set), ``pareto.png`` (accuracy vs latency, or whichever two perfs the
objective trades off) and ``best.yaml`` (``hwnas derive``). Plotting imports
matplotlib lazily with the Agg backend so headless machines and quick imports work.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.errors import HwnasError
from hwnas.search.controllers.pareto import pareto_indices
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import SearchSpace


def write_rollouts_csv(path: Path, rollouts: Sequence[Rollout], space: SearchSpace,
                       feasible: Sequence[bool] | None = None) -> None:
    names = sorted({k for r in rollouts for k in r.perfs})
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "arch_str", "arch", "reward", "feasible", *names])
        for i, r in enumerate(rollouts):
            ok = True if feasible is None else feasible[i]
            w.writerow([r.step, space.to_str(r.arch), "-".join(map(str, r.arch)), r.reward, int(ok),
                        *[r.perfs.get(n, "") for n in names]])
    tmp.replace(path)


def unique_best(rollouts: Sequence[Rollout], space: SearchSpace) -> list[Rollout]:
    """One rollout per distinct network (the first seen), keeping order."""
    seen: set[str] = set()
    out = []
    for r in rollouts:
        key = space.to_str(r.arch)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def arch_record(r: Rollout, space: SearchSpace) -> dict[str, Any]:
    return {"arch_str": space.to_str(r.arch), "arch": _plain(space.to_jsonable(r.arch)),
            "perfs": {k: float(v) for k, v in sorted(r.perfs.items())},
            "reward": None if r.reward is None else float(r.reward), "step": r.step}


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def pareto_set(rollouts: Sequence[Rollout], feasible: Sequence[bool], directions: Mapping[str, str],
               space: SearchSpace) -> list[Rollout]:
    """Feasible, non-dominated rollouts (by reward alone when there are no directions)."""
    pool = unique_best([r for r, ok in zip(rollouts, feasible) if ok and r.perfs], space)
    dirs = {k: v for k, v in directions.items() if all(k in r.perfs for r in pool)}
    if not pool:
        return []
    if not dirs:
        return [max(pool, key=lambda r: r.reward if r.reward is not None else float("-inf"))]
    front = [pool[i] for i in pareto_indices([r.perfs for r in pool], dirs)]
    first = next(iter(dirs))
    return sorted(front, key=lambda r: r.perfs[first], reverse=dirs[first] == "max")


def write_yaml(path: Path, obj: Any) -> None:
    import yaml

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(obj, sort_keys=False))
    tmp.replace(path)


def plot_front(path: Path, rollouts: Sequence[Rollout], front: Sequence[Rollout], feasible: Sequence[bool],
               directions: Mapping[str, str], budget: float | None = None) -> bool:
    """Scatter of all rollouts and the front; x is a 'min' perf, y a 'max' perf (or reward)."""
    mins = [k for k, d in directions.items() if d == "min"]
    maxs = [k for k, d in directions.items() if d == "max"]
    have = [r for r in rollouts if r.perfs]
    if not have:
        return False
    x_name = mins[0] if mins else (maxs[1] if len(maxs) > 1 else None)
    y_name = maxs[0] if maxs else "reward"
    if x_name is None or any(x_name not in r.perfs for r in have):
        x_name = "step"

    def val(r: Rollout, name: str) -> float:
        if name == "step":
            return float(r.step)
        if name == "reward":
            return float(r.reward if r.reward is not None else float("nan"))
        return float(r.perfs.get(name, float("nan")))

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    ok = [r for r, f in zip(rollouts, feasible) if f and r.perfs]
    bad = [r for r, f in zip(rollouts, feasible) if not f and r.perfs]
    ax.scatter([val(r, x_name) for r in ok], [val(r, y_name) for r in ok], s=10, c="0.6", label="feasible")
    if bad:
        ax.scatter([val(r, x_name) for r in bad], [val(r, y_name) for r in bad], s=10, c="#f4a582", marker="x",
                   label="over budget")
    fr = sorted(front, key=lambda r: val(r, x_name))
    ax.plot([val(r, x_name) for r in fr], [val(r, y_name) for r in fr], "o-", c="#b2182b", ms=4, label="Pareto set")
    if budget:
        ax.axvline(budget, ls="--", c="k", lw=0.8, label=f"budget {budget:g}")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def read_history(run_dir: Path, space: Any = None) -> list[Rollout]:
    """Rollouts of a run directory (from its checkpoint)."""
    from hwnas.search.trainers.checkpoint import load_checkpoint

    state = load_checkpoint(Path(run_dir))
    if state is None:
        raise HwnasError(f"{run_dir}: no checkpoint.json; is this a search run directory?")
    return history_of(state, Path(run_dir), space)


def history_of(state: Any, run_dir: Path, space: Any = None) -> list[Rollout]:
    """The rollout history of a checkpoint state; damaged rows (or, given the space,
    architectures that are not of it) are named."""
    history = state.get("history", []) if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise HwnasError(f"{run_dir / 'checkpoint.json'}: damaged checkpoint (no history list)")
    out = []
    for i, d in enumerate(history):
        try:
            r = Rollout.from_dict(d)
            if space is not None:
                space.validate(r.arch)
                _check_arch_str(d, r, space)
            out.append(r)
        except HwnasError as exc:
            raise HwnasError(f"{run_dir / 'checkpoint.json'}: history row {i}: {exc}") from None
    return out


def _check_arch_str(d: Any, r: Rollout, space: Any) -> None:
    """A row's ``arch_str`` (written beside the indices for people and CSVs) must parse in
    the run's space to the same architecture: otherwise the row is not of this run."""
    text = d.get("arch_str")
    if text is None:
        return
    if space.canonical(space.from_str(text)) != space.canonical(r.arch):
        raise HwnasError(f"arch_str {str(text)[:60]!r} is not the architecture of its indices")


def derived_record(state: Any, run_dir: Path, space: Any) -> dict[str, Any]:
    """The derived architecture a differentiable run saved, checked against the run's space."""
    from hwnas.search.ckpt_schema import check_perfs

    rec = state.get("derived")
    where = f"{run_dir / 'checkpoint.json'}: derived"
    if not isinstance(rec, dict) or not isinstance(rec.get("arch_str"), str):
        raise HwnasError(f"{where}: expected a record with the derived arch_str, got {str(rec)[:60]}")
    try:
        space.from_str(rec["arch_str"])
        check_perfs(rec.get("perfs") or {}, "derived")
    except HwnasError as exc:
        raise HwnasError(f"{where}: {exc}") from None
    return dict(rec)


def derive(run_dir: Path, top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` best feasible distinct architectures of a finished (or partial) run;
    for a differentiable search, the one architecture its final weights derive to
    (DARTS' rule: per node the two strongest non-``none`` inputs), with those weights."""
    from hwnas.search.build import load_run_config
    from hwnas.search.trainers.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise HwnasError(f"{run_dir}: no config.yaml; is this a search run directory?")
    state = load_checkpoint(run_dir)
    space = load_run_config(cfg_path)["search_space"].build()
    if state is not None and state.get("kind") == "differentiable":
        return [derived_record(state, run_dir, space)]
    hist = [r for r in read_history(run_dir, space) if r.reward is not None and not r.info.get("infeasible")]
    best = sorted(unique_best(hist, space), key=lambda r: -float(r.reward))[:top]  # type: ignore[arg-type]
    return [arch_record(r, space) for r in best]
