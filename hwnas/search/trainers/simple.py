"""The ``simple`` trainer: the search loop with checkpoints and a run directory.

One step: ``controller.sample`` -> ``weights_manager.assemble_candidate`` (when the
evaluator needs candidates) -> ``evaluator.evaluate`` -> ``controller.step``.
Every ``checkpoint_every`` steps the loop saves the controller, evaluator, weights
manager and objective states with the rollout history; a run started again in the
same directory with the same config continues from there and, because every random
stream lives in a saved state or is derived from (seed, architecture), produces the
same history as a run that was never interrupted.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hwnas.config import RunConfig, opt
from hwnas.errors import ConfigError
from hwnas.inputs import output_dir
from hwnas.registry import register
from hwnas.search import report
from hwnas.search.build import SearchComponents
from hwnas.search.objectives import is_feasible
from hwnas.search.rollout import Rollout
from hwnas.search.tensorboard import open_run_log
from hwnas.search.trainers.base import Trainer
from hwnas.search.trainers.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


def config_hash(cfg: RunConfig) -> str:
    """Identity of a run's config, ignoring how long it runs (so a search can be extended)."""
    d = cfg.to_dict()
    d.pop("run", None)
    for key in ("steps", "stop_after"):  # how long it runs, not what it computes
        d.get("trainer", {}).pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


@register("trainer", "simple")
class SimpleTrainer(Trainer):
    """Sample -> assemble -> evaluate -> step, with checkpoints, CSV, Pareto YAML and PNG."""

    @dataclass(frozen=True)
    class Options:
        steps: int = opt(20, min=1, max=10_000_000, help="controller steps (search iterations)")
        rollouts_per_step: int = opt(1, min=1, max=100_000, help="rollouts sampled and evaluated per step")
        checkpoint_every: int = opt(5, min=0, help="save a checkpoint every N steps (0 = only at the end)")
        evaluator_updates: int = opt(0, min=0, help="shared-weight training rounds before each step (mepa)")
        reuse: bool = opt(False, help="reuse perfs of architectures seen before instead of re-evaluating "
                                      "(right for tune and predictors, wrong for shared weights that still train)")
        plot: bool = opt(True, help="write pareto.png at the end")

    def __init__(self, options: Any, *, components: SearchComponents, run_dir: Path | None = None,
                 **_: Any) -> None:
        self.options = options
        self.c = components
        if components.controller is None:
            raise ConfigError("controller: a search needs a controller section")
        if components.evaluator is None:
            raise ConfigError("evaluator: the simple trainer needs an evaluator section (tune, predictor, mepa, ...)")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.history: list[Rollout] = []
        self.step_index = 0
        self._seen: dict[tuple[int, ...], Rollout] = {}

    # -- state --------------------------------------------------------------------------
    def _components(self) -> dict[str, Any]:
        return {"controller": self.c.controller, "evaluator": self.c.evaluator,
                "weights_manager": self.c.weights_manager, "objective": self.c.objective}

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step_index, "config_hash": config_hash(self.c.config),
                               "history": [r.to_dict(self.c.space) for r in self.history]}
        for name, comp in self._components().items():
            sd = getattr(comp, "state_dict", None)
            out[name] = sd() if callable(sd) else {}
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        missing = [k for k in ("config_hash", "step", "history") if k not in state]
        if missing:
            raise ConfigError(f"{self.run_dir}: damaged checkpoint (no {', '.join(missing)}); restart the search")
        if state.get("config_hash") != config_hash(self.c.config):
            raise ConfigError(f"{self.run_dir}: holds a search with a different config; choose another run "
                              "directory or restart the search")
        if not isinstance(state.get("step"), int):
            raise ConfigError(f"{self.run_dir}: damaged checkpoint (no step); restart the search")
        self.history = report.history_of(state, self.run_dir or Path("."), self.c.space)
        for name, comp in self._components().items():
            if state.get(name) and comp is not None:
                try:
                    comp.load_state_dict(state[name])
                except ConfigError as exc:  # the component says what is wrong: name the run too
                    raise ConfigError(f"{self.run_dir}: {name}: {exc}") from None
                except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
                    raise ConfigError(f"{self.run_dir}: damaged checkpoint ({name} state: "
                                      f"{type(exc).__name__})") from None
        self.step_index = int(state["step"])
        self._seen = {}
        for r in self.history:
            self._seen.setdefault(self.c.space.canonical(r.arch), r)

    @property
    def is_main(self) -> bool:
        """Rank 0 of a distributed search (or the only process): the only writer."""
        rt = getattr(self.c, "runtime", None)
        return rt is None or rt.is_main

    def checkpoint(self) -> None:
        if self.run_dir is not None and self.is_main:
            save_checkpoint(self.run_dir, self.state_dict(), self.step_index)
            report.write_rollouts_csv(self.run_dir / "rollouts.csv", self.history, self.c.space, self._feasible())

    def _feasible(self) -> list[bool]:
        return [not r.info.get("infeasible", False) for r in self.history]

    # -- loop ---------------------------------------------------------------------------
    def _evaluate(self, rollouts: list[Rollout]) -> None:
        todo = rollouts
        if self.options.reuse:
            todo = []
            for r in rollouts:
                old = self._seen.get(self.c.space.canonical(r.arch))
                if old is not None:
                    r.perfs, r.reward = dict(old.perfs), old.reward
                    r.info["reused"] = True
                else:
                    todo.append(r)
        if todo:
            if getattr(self.c.evaluator, "needs_candidates", True) and self.c.weights_manager is not None:
                for r in todo:
                    if r.candidate is None:
                        r.candidate = self.c.weights_manager.assemble_candidate(r)
            self.c.evaluator.evaluate(todo)
        for r in rollouts:
            r.candidate = None  # free the network; perfs are what we keep
            if not is_feasible(self.c.objective, r.perfs):
                r.info["infeasible"] = True
            self._seen.setdefault(self.c.space.canonical(r.arch), r)

    def step(self) -> list[Rollout]:
        """One search iteration; returns its evaluated rollouts."""
        for _ in range(self.options.evaluator_updates):
            self.c.evaluator.update_evaluator(self.c.controller)
        assert self.c.controller is not None
        rollouts = self.c.controller.sample(self.options.rollouts_per_step)
        for r in rollouts:
            r.step = self.step_index
        self._evaluate(rollouts)
        self.c.controller.step(rollouts)
        self.history.extend(rollouts)
        self.step_index += 1
        return rollouts

    def resume(self) -> bool:
        """Load the run directory's checkpoint, if any; True when resumed."""
        if self.run_dir is None:
            return False
        rt = getattr(self.c, "runtime", None)
        state = load_checkpoint(self.run_dir, map_location=rt.map_location() if rt is not None else "cpu")
        if state is None:
            return False
        self.load_state_dict(state)
        log.info("resumed %s at step %d (%d rollouts)", self.run_dir, self.step_index, len(self.history))
        return True

    def run(self) -> dict[str, Any]:
        """Run (or continue) the search to ``steps`` and write the run directory; returns a summary."""
        import yaml

        t0 = time.perf_counter()
        if self.run_dir is not None and self.is_main:
            output_dir(self.run_dir, "run directory", parents=True)
        resumed_at = self.step_index if self.resume() else None  # refuses another config before writing
        if self.run_dir is not None and self.is_main:
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.c.config.to_dict(), sort_keys=False))
        every = self.options.checkpoint_every
        tb = open_run_log(self.run_dir, self.c.config, self.step_index) if self.is_main else None
        while self.step_index < self.options.steps:
            rs = self.step()
            if tb is not None:
                best_so_far = self.best()
                tb.rollouts(self.step_index, rs, None if best_so_far is None else best_so_far.reward)
            if log.isEnabledFor(logging.INFO):
                best = self.best()
                log.info("step %d/%d: reward %s; best %s", self.step_index, self.options.steps,
                         [r.reward for r in rs], None if best is None else best.reward)
            if every and self.step_index % every == 0:
                self.checkpoint()
        self.checkpoint()
        out = self.finish(time.perf_counter() - t0, resumed_at)
        if tb is not None:
            self._log_end(tb, out)
        return out

    def _log_end(self, tb: Any, out: Mapping[str, Any]) -> None:
        """The Pareto front figure (first two objectives) and the hyper-parameters with the best perfs."""
        dirs = list(self.c.objective.directions())
        hw = [k for k in dirs if k.endswith(("_ms", "_mj"))]
        task = [k for k in dirs if k not in hw]
        if hw and task:
            x, y = hw[0], task[0]  # hardware metric across, task metric up
            pts = [(float(r.perfs[x]), float(r.perfs[y])) for r in self.history if x in r.perfs and y in r.perfs]
            front = [(float(p["perfs"][x]), float(p["perfs"][y])) for p in out["pareto"]
                     if x in p["perfs"] and y in p["perfs"]]
            tb.pareto(self.step_index, pts, front, (x, y))
        best = out.get("best") or {}
        tb.hparams({"reward": best.get("reward"), **(best.get("perfs") or {})})
        tb.close()

    def best(self) -> Rollout | None:
        ok = [r for r, f in zip(self.history, self._feasible()) if f and r.reward is not None]
        return max(ok, key=lambda r: float(r.reward)) if ok else None  # type: ignore[arg-type]

    def finish(self, seconds: float, resumed_at: int | None = None) -> dict[str, Any]:
        space, directions = self.c.space, self.c.objective.directions()
        feasible = self._feasible()
        front = report.pareto_set(self.history, feasible, directions, space)
        out: dict[str, Any] = {
            "steps": self.step_index, "rollouts": len(self.history), "seconds": round(seconds, 3),
            "feasible": int(sum(feasible)), "resumed_at": resumed_at,
            "best": None if self.best() is None else report.arch_record(self.best(), space),  # type: ignore[arg-type]
            "pareto": [report.arch_record(r, space) for r in front],
        }
        out.update(getattr(self.c.evaluator, "summary", dict)())  # e.g. the table evaluator's distinct queries
        rt = getattr(self.c, "runtime", None)
        if rt is not None and rt.distributed:
            out.update(rank=rt.rank, world=rt.world)
        if self.run_dir is not None and self.is_main:
            report.write_yaml(self.run_dir / "pareto.yaml", out["pareto"])
            out["run_dir"] = str(self.run_dir)
            if self.options.plot:
                budget = getattr(getattr(self.c.objective, "options", None), "budget", None) or _child_budget(
                    self.c.objective)
                report.plot_front(self.run_dir / "pareto.png", self.history, front, feasible, directions, budget)
            report.write_yaml(self.run_dir / "summary.yaml", {k: v for k, v in out.items() if k != "pareto"})
        return out


def _child_budget(objective: Any) -> float | None:
    for _, _, child in getattr(objective, "children", []):
        o = getattr(child, "options", None)
        if getattr(o, "mode", "report") == "constraint" and hasattr(o, "budget"):  # a hardware budget, not a
            return float(o.budget)  # robustness floor (fault_tolerance, adversarial)
    return None
