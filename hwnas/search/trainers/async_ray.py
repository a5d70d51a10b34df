"""The ``async`` trainer: rollouts evaluated in parallel on a Ray pool, the controller
updated as each result arrives.

Why asynchronous: a train-from-scratch evaluation takes seconds to hours and
candidates differ in cost, so waiting for a whole batch idles every worker but the
slowest. Here ``workers`` evaluations are always in flight; whenever one finishes the
controller learns from it and proposes the next (as aw_nas's and NNI's async modes).

Each rollout is one Ray task with its own CPU/GPU share (``cpus_per_task``,
``gpus_per_task``); a worker process builds the run's components from the config once
and reuses them. A worker that dies mid-evaluation costs only its task, which Ray
retries on another worker (``max_retries``); results already returned are in the
driver's history. The driver is the only writer of the run directory: its checkpoint
also lists the rollouts in flight, so a resumed search re-submits them instead of
losing them. Completion order depends on timing, so unlike ``simple`` an async search
is not bitwise repeatable; each evaluation still is (seeded by architecture).
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hwnas.config import opt
from hwnas.errors import ConfigError, HwnasError
from hwnas.inputs import output_dir
from hwnas.registry import register
from hwnas.search.build import SearchComponents, base_dir
from hwnas.search.objectives import is_feasible
from hwnas.search.rollout import Rollout
from hwnas.search.tensorboard import open_run_log
from hwnas.search.trainers.simple import SimpleTrainer

log = logging.getLogger(__name__)

#: Components a worker process built, by config (built once per worker, reused per task).
_WORKER_CACHE: dict[str, SearchComponents] = {}


def evaluate_task(cfg_data: dict[str, Any], base: str, arch: list[int], step: int, device: str, threads: int,
                  trace_dir: str | None) -> dict[str, Any]:
    """Evaluate one rollout in a Ray worker; returns JSON-able perfs, reward and info."""
    import torch

    from hwnas.config import parse_config
    from hwnas.search.build import build_components

    if trace_dir:  # which process runs which rollout (operations; the kill test)
        Path(trace_dir, f"{step}-{os.getpid()}").write_text(str(os.getpid()))
        while Path(trace_dir, f"{step}.hold").exists():  # held mid-evaluation (a test kills this worker here)
            time.sleep(0.05)
    key = json.dumps([cfg_data, base, device], sort_keys=True, default=str)
    comps = _WORKER_CACHE.get(key)
    if comps is None:
        cfg = parse_config(cfg_data, base=Path(base))
        comps = _WORKER_CACHE[key] = build_components(cfg, controller=False, device=device)
    if threads:
        torch.set_num_threads(threads)
    from hwnas.search.trainers.pool import evaluate_one  # one evaluation, as the process pool does it

    return evaluate_one(comps, arch, step)


@register("trainer", "async")
class AsyncTrainer(SimpleTrainer):
    """Parallel asynchronous evaluation on Ray (local instance by default, a cluster by address)."""

    @dataclass(frozen=True)
    class Options:
        steps: int = opt(20, min=1, max=10_000_000, help="rollouts to evaluate (one controller step each)")
        workers: int = opt(2, min=1, help="evaluations in flight at once")
        cpus_per_task: float = opt(1.0, gt=0, help="CPUs each evaluation reserves (and its torch threads)")
        gpus_per_task: float = opt(0.0, min=0, help="GPUs each evaluation reserves (> 0: it trains on CUDA)")
        max_retries: int = opt(3, min=0, help="times a rollout whose worker died is retried elsewhere")
        checkpoint_every: int = opt(5, min=0, help="save a checkpoint every N finished rollouts (0 = at the end)")
        ray_address: str = opt("", help="Ray cluster address (HOST:PORT); empty = start a local instance")
        trace_dir: Path | None = opt(None, help="folder where each task writes STEP-PID when it starts, "
                                       "and waits while a file STEP.hold exists there (debugging, tests)")
        plot: bool = opt(True, help="write pareto.png at the end")
        reuse: bool = opt(False, help="evaluate each architecture once: one sampled again takes the perfs of its "
                                      "finished (or in-flight) evaluation (right for tune: seeded by architecture)")
        evaluator_updates: int = opt(0, max=0, help="shared-weight training is not supported by async")

    def __init__(self, options: Any, *, components: SearchComponents, run_dir: Path | None = None,
                 **_: Any) -> None:
        super().__init__(options, components=components, run_dir=run_dir)
        if hasattr(components.weights_manager, "module"):
            raise ConfigError("trainer.type: async evaluates rollouts in separate workers and cannot train shared "
                              "weights; use a train-from-scratch or predictor evaluator (e.g. tune)")
        self.pending: list[Rollout] = []
        #: With ``reuse``: rollouts waiting for the in-flight evaluation of their architecture.
        self._followers: dict[tuple[int, ...], list[Rollout]] = {}

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["pending"] = [[r.step, list(r.arch)] for r in self.pending]
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.pending = []
        for step, arch in state.get("pending") or []:
            r = Rollout(tuple(int(a) for a in arch))
            r.step = int(step)
            self.pending.append(r)

    # -- loop ----------------------------------------------------------------------------
    def _task_args(self) -> tuple[dict[str, Any], str, str, int]:
        o = self.options
        device = "cuda" if o.gpus_per_task > 0 else "cpu"
        cfg = {k: v for k, v in self.c.config.to_dict().items() if k not in ("trainer", "controller")}
        return cfg, str(base_dir(self.c.config)), device, max(1, int(o.cpus_per_task))

    def _submit(self, ray: Any, remote: Any, r: Rollout, inflight: dict[Any, Rollout]) -> None:
        o = self.options
        cfg, base, device, threads = self._task_args()
        ref = remote.options(num_cpus=o.cpus_per_task, num_gpus=o.gpus_per_task, max_retries=o.max_retries,
                             retry_exceptions=False).remote(cfg, base, list(r.arch), r.step, device, threads,
                                                            str(o.trace_dir) if o.trace_dir else None)
        inflight[ref] = r

    def _finish_one(self, r: Rollout, res: dict[str, Any]) -> None:
        r.perfs, r.reward = dict(res["perfs"]), res["reward"]
        r.info.update(res["info"], worker_pid=res["pid"])
        if not is_feasible(self.c.objective, r.perfs):
            r.info["infeasible"] = True
        self.c.controller.step([r])  # type: ignore[union-attr]
        self.history.append(r)
        self.step_index += 1
        key = tuple(self.c.space.canonical(r.arch))
        self._seen.setdefault(key, r)
        for f in self._followers.pop(key, []):
            self._finish_one(f, {**res, "info": {**res["info"], "reused": True}})

    def _dispatch(self, ray: Any, remote: Any, r: Rollout, inflight: dict[Any, Rollout]) -> None:
        """Submit ``r``; with ``reuse``, an architecture already finished takes its perfs now and
        one in flight waits for that evaluation, so no architecture is evaluated twice."""
        key = tuple(self.c.space.canonical(r.arch))
        if self.options.reuse:
            old = self._seen.get(key)
            if old is not None:
                self._finish_one(r, {"perfs": old.perfs, "reward": old.reward, "info": {"reused": True},
                                     "pid": old.info.get("worker_pid", 0)})
                return
            if any(tuple(self.c.space.canonical(x.arch)) == key for x in inflight.values()):
                self._followers.setdefault(key, []).append(r)
                return
        self._submit(ray, remote, r, inflight)

    def _active(self, inflight: dict[Any, Rollout]) -> list[Rollout]:
        """Rollouts sampled and not finished: in flight, or waiting for an in-flight twin."""
        return list(inflight.values()) + [f for fs in self._followers.values() for f in fs]

    def _get(self, ray: Any, ref: Any, r: Rollout) -> dict[str, Any]:
        """The task's result; a user error raised in the worker comes back as itself."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, HwnasError):
                raise type(cause)(str(cause)) from None
            raise HwnasError(f"rollout {self.c.space.to_str(r.arch)}: evaluation failed in a Ray worker: "
                             f"{str(exc).strip().splitlines()[-1][:300]}") from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            raise HwnasError(f"rollout {self.c.space.to_str(r.arch)}: its worker died {self.options.max_retries + 1}"
                             f" times ({type(exc).__name__}); raise trainer.max_retries or check the nodes") from None

    def run(self) -> dict[str, Any]:
        """Run (or continue) the search to ``steps`` finished rollouts; returns the summary."""
        from hwnas.raycluster import connect

        t0 = time.perf_counter()
        o = self.options
        if self.run_dir is not None and self.is_main:
            output_dir(self.run_dir, "run directory", parents=True)
        resumed_at = self.step_index if self.resume() else None  # refuses another config before writing
        self._write_config()
        ray = connect(o.ray_address or None, num_cpus=max(1, math.ceil(o.workers * o.cpus_per_task)))
        remote = ray.remote(evaluate_task)
        tb = open_run_log(self.run_dir, self.c.config, self.step_index) if self.is_main else None
        inflight: dict[Any, Rollout] = {}
        for r in self.pending:
            self._dispatch(ray, remote, r, inflight)
        try:
            while self.step_index < o.steps:
                while len(inflight) < o.workers and self.step_index + len(self._active(inflight)) < o.steps:
                    r = self.c.controller.sample(1)[0]  # type: ignore[union-attr]
                    r.step = self.step_index + len(self._active(inflight))
                    self._dispatch(ray, remote, r, inflight)
                self.pending = self._active(inflight)
                if not inflight:
                    continue
                ready, _ = ray.wait(list(inflight), num_returns=1)
                r = inflight.pop(ready[0])
                self._finish_one(r, self._get(ray, ready[0], r))
                if tb is not None:  # one point per finished rollout
                    best = self.best()
                    tb.rollouts(self.step_index, [r], None if best is None else best.reward)
                self.pending = self._active(inflight)
                log.info("rollout %d/%d: reward %s (%d in flight)", self.step_index, o.steps, r.reward, len(inflight))
                if o.checkpoint_every and self.step_index % o.checkpoint_every == 0:
                    self.checkpoint()
        finally:
            self.pending = self._active(inflight)
            self.checkpoint()  # finished results are never lost, in-flight ones are re-submitted on resume
            for ref in inflight:
                ray.cancel(ref, force=True)
        out = self.finish(time.perf_counter() - t0, resumed_at)
        if tb is not None:
            self._log_end(tb, out)
        return out

    def _write_config(self) -> None:
        import yaml

        if self.run_dir is not None and self.is_main:
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.c.config.to_dict(), sort_keys=False))
