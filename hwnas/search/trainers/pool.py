"""Parallel train-from-scratch evaluation on a pool of worker processes (``--nproc N``).

Why not DDP ranks: ``tune`` trains every candidate on its own, so N DistributedDataParallel
ranks that each run the whole search evaluate every candidate N times. Here one driver
process runs the search (controller, checkpoints, run directory: the only writer) and
splits each step's candidates over N worker processes, one candidate per worker at a
time, so each candidate is trained once.

Each worker builds the run's components from the config once (as a Ray worker of the
``async`` trainer does) and evaluates rollouts from their architecture alone: training is
seeded by (run seed, architecture), so where a candidate runs does not change its perfs.
Messages are JSON over a pipe (no pickled objects cross it). A worker that dies while it
holds a candidate (killed, out of memory) is replaced and the candidate goes back to the
queue, so a lost worker loses nothing; after ``max_retries`` deaths on the same candidate
the search stops with one line. Checkpoints are the trainer's own, as without a pool.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from hwnas import errors
from hwnas.errors import ConfigError, HwnasError
from hwnas.search.rollout import Rollout

log = logging.getLogger(__name__)

#: Times a candidate whose worker died is handed to another worker before the search stops.
MAX_RETRIES = 3


def evaluate_one(comps: Any, arch: Sequence[int], step: int) -> dict[str, Any]:
    """Evaluate one architecture with already built components; JSON-able perfs, reward, info."""
    r = Rollout(tuple(int(a) for a in arch))
    r.step = step
    if getattr(comps.evaluator, "needs_candidates", True) and comps.weights_manager is not None:
        r.candidate = comps.weights_manager.assemble_candidate(r)
    comps.evaluator.evaluate([r])
    info = {k: v for k, v in r.info.items() if isinstance(v, (bool, int, float, str))}
    return {"perfs": {k: float(v) for k, v in r.perfs.items()}, "info": info,
            "reward": None if r.reward is None else float(r.reward), "pid": os.getpid()}


def _held(trace_dir: str | None, task: str) -> None:
    """Test and debugging hook: record ``TASK-PID`` when a task starts, then wait while
    ``TASK.hold`` exists (a test kills this worker there, at a point it chose)."""
    if not trace_dir:
        return
    Path(trace_dir, f"{task}-{os.getpid()}").write_text(str(os.getpid()))
    while Path(trace_dir, f"{task}.hold").exists():
        time.sleep(0.02)


def worker_main(conn: Any, cfg_data: dict[str, Any], base: str, device: str, threads: int,
                trace_dir: str | None) -> None:
    """A worker's loop: receive ``[task, step, arch]`` as JSON, answer with the result or the
    error as JSON; an empty message ends it."""
    import torch

    from hwnas.config import parse_config
    from hwnas.search.build import build_components

    torch.set_num_threads(max(1, threads))
    comps = None
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not msg:
            return
        task, step, arch = json.loads(msg)
        _held(trace_dir, task)
        try:
            if comps is None:
                comps = build_components(parse_config(cfg_data, base=Path(base)), controller=False, device=device)
            res = evaluate_one(comps, arch, step)
        except HwnasError as exc:
            res = {"error": str(exc), "kind": type(exc).__name__}
        except Exception as exc:  # a bug in a worker: the driver reports it, naming the rollout
            res = {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "kind": ""}
        conn.send_bytes(json.dumps(res).encode())


@dataclass
class _Worker:
    process: Any
    conn: Any
    task: int | None = None


class EvalPool:
    """N worker processes that evaluate rollouts of one run config; :meth:`map` hands each
    item to exactly one worker and re-queues the item of a worker that died."""

    def __init__(self, cfg_data: Mapping[str, Any], base: str | Path, workers: int, *, device: str = "cpu",
                 threads: int = 0, trace_dir: str | Path | None = None, max_retries: int = MAX_RETRIES) -> None:
        if workers < 1:
            raise ConfigError(f"--nproc: expected a number of workers >= 1, got {workers}")
        self.cfg_data = dict(cfg_data)
        self.base, self.device = str(base), device
        self.n = int(workers)
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.n)
        self.trace_dir = str(trace_dir) if trace_dir else None
        self.max_retries = max_retries
        self.workers: list[_Worker] = []
        #: Finished evaluations per task name, deaths of workers, workers started.
        self.finished: Counter[str] = Counter()
        self.deaths = 0
        self.started = 0

    def _spawn(self) -> _Worker:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # a clean interpreter: no forked torch threads or locks
        parent, child = ctx.Pipe()
        p = ctx.Process(target=worker_main, args=(child, self.cfg_data, self.base, self.device, self.threads,
                                                   self.trace_dir), daemon=True)
        p.start()
        child.close()
        self.started += 1
        return _Worker(p, parent)

    def start(self) -> EvalPool:
        while len(self.workers) < self.n:
            self.workers.append(self._spawn())
        return self

    def close(self) -> None:
        """Ask every worker to stop, then end those that do not within a few seconds."""
        for w in self.workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                w.conn.send_bytes(b"")
        for w in self.workers:
            w.process.join(timeout=5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=5)
            w.conn.close()
        self.workers = []

    def map(self, items: Sequence[tuple[str, int, Sequence[int]]]) -> list[dict[str, Any]]:
        """Results of ``(task name, step, arch)`` items, in order; each finished exactly once."""
        self.start()
        queue: deque[int] = deque(range(len(items)))
        results: dict[int, dict[str, Any]] = {}
        deaths: Counter[int] = Counter()
        while len(results) < len(items):
            for i, w in enumerate(self.workers):
                if w.task is None and queue:
                    self._assign(i, queue.popleft(), items)
            self._collect(items, queue, results, deaths)
        return [results[i] for i in range(len(items))]

    def _assign(self, i: int, task: int, items: Sequence[tuple[str, int, Sequence[int]]]) -> None:
        """Hand ``task`` to idle worker ``i``; one that died while idle is replaced first."""
        name, step, arch = items[task]
        msg = json.dumps([name, int(step), [int(a) for a in arch]]).encode()
        for _ in range(2):
            w = self.workers[i]
            try:
                if w.process.is_alive():
                    w.conn.send_bytes(msg)
                    w.task = task
                    return
            except OSError:  # BrokenPipeError: it died just now
                pass
            log.warning("idle worker %d (pid %s) died (exit code %s); replaced", i, w.process.pid, w.process.exitcode)
            w.conn.close()
            self.workers[i] = self._spawn()
        raise HwnasError(f"rollout {name}: pool workers die as soon as they start; check memory or lower --nproc")

    def _collect(self, items: Sequence[tuple[str, int, Sequence[int]]], queue: deque[int],
                 results: dict[int, dict[str, Any]], deaths: Counter[int]) -> None:
        """Wait for a result or a death among the busy workers and account for it."""
        from multiprocessing.connection import wait

        busy = [w for w in self.workers if w.task is not None]
        wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
        for i, w in enumerate(self.workers):
            if w.task is None:
                continue
            data = None
            with contextlib.suppress(EOFError, OSError):
                if w.conn.poll():
                    data = w.conn.recv_bytes()
            if data:
                res = json.loads(data)
                if "error" in res:
                    raise _error(res, items[w.task][0])
                results[w.task] = res
                self.finished[items[w.task][0]] += 1
                w.task = None
            elif not w.process.is_alive():
                self._replace(i, w, items, queue, deaths)

    def _replace(self, i: int, w: _Worker, items: Sequence[tuple[str, int, Sequence[int]]], queue: deque[int],
                 deaths: Counter[int]) -> None:
        """A worker died holding a task: the task goes back to the front of the queue."""
        assert w.task is not None
        self.deaths += 1
        deaths[w.task] += 1
        name = items[w.task][0]
        if deaths[w.task] > self.max_retries:
            raise HwnasError(f"rollout {name}: its worker died {deaths[w.task]} times (exit code "
                             f"{w.process.exitcode}); check memory or lower --nproc")
        log.warning("worker %d (pid %s) died on %s (exit code %s); re-queued", i, w.process.pid, name,
                    w.process.exitcode)
        queue.appendleft(w.task)
        w.conn.close()
        self.workers[i] = self._spawn()


def _error(res: Mapping[str, Any], task: str) -> HwnasError:
    """The error a worker reported: a user error as its own one-line class, a bug naming the task."""
    cls = getattr(errors, str(res.get("kind") or ""), None)
    if isinstance(cls, type) and issubclass(cls, HwnasError):
        return cls(str(res["error"]))
    return HwnasError(f"rollout {task}: evaluation failed in a pool worker: {res['error']}")


class PooledEvaluator:
    """The run's evaluator, with each batch of rollouts split over an :class:`EvalPool`.

    Duplicates in one batch are trained once (a candidate's perfs depend only on its
    architecture); the trainer's ``reuse`` option decides about architectures seen in
    earlier steps. State, updates and summary are the wrapped evaluator's."""

    needs_candidates = False  # workers build their candidates; the driver builds none

    def __init__(self, inner: Any, pool: EvalPool, space: Any) -> None:
        self.inner, self.pool, self.space = inner, pool, space
        self.needs_shared_weights = False

    def evaluate(self, rollouts: Sequence[Rollout]) -> None:
        groups: dict[tuple[int, ...], list[Rollout]] = {}
        for r in rollouts:
            groups.setdefault(tuple(self.space.canonical(r.arch)), []).append(r)
        firsts = [rs[0] for rs in groups.values()]
        items = [(f"s{r.step}r{i}", r.step, r.arch) for i, r in enumerate(firsts)]
        for res, rs in zip(self.pool.map(items), groups.values()):
            for j, r in enumerate(rs):
                r.perfs, r.reward = dict(res["perfs"]), res["reward"]
                r.info.update(res["info"], worker_pid=res["pid"])
                if j:
                    r.info["reused"] = True

    def update_evaluator(self, controller: Any = None) -> dict[str, float]:
        return self.inner.update_evaluator(controller)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state)

    def summary(self) -> dict[str, Any]:
        out = dict(self.inner.summary())
        out.update(pool_workers=self.pool.n, pool_evaluations=int(sum(self.pool.finished.values())),
                   pool_worker_deaths=self.pool.deaths)
        return out


def pool_applies(cfg: Any) -> bool:
    """Whether ``--nproc N`` splits candidates over a pool (or Ray workers) instead of DDP
    ranks: a search whose evaluator trains no shared weights (tune, predictor, table) run
    by the ``simple`` or ``async`` trainer."""
    from hwnas import registry
    from hwnas.search.build import trainer_config
    from hwnas.search.trainers.async_ray import AsyncTrainer
    from hwnas.search.trainers.simple import SimpleTrainer

    if "evaluator" not in cfg:
        return False
    trainer = registry.get("trainer", trainer_config(cfg).type)
    evaluator = registry.get("evaluator", cfg["evaluator"].type)
    return trainer in (SimpleTrainer, AsyncTrainer) and not getattr(evaluator, "needs_shared_weights", False)


@contextlib.contextmanager
def pooled(trainer: Any, workers: int, trace_dir: str | Path | None = None) -> Iterator[Any]:
    """``trainer`` with its evaluations split over ``workers`` processes while the block runs:
    the ``async`` trainer gets ``workers`` Ray workers, the ``simple`` one an :class:`EvalPool`."""
    from hwnas.search.build import base_dir
    from hwnas.search.trainers.async_ray import AsyncTrainer

    if isinstance(trainer, AsyncTrainer):
        trainer.options = replace(trainer.options, workers=workers)
        yield trainer
        return
    c = trainer.c
    wm = c.weights_manager
    if hasattr(wm, "module") or getattr(wm, "inherits_weights", False):
        raise ConfigError(f"--nproc {workers}: weights_manager {getattr(wm, 'registry_name', type(wm).__name__)} "
                          "keeps weights between candidates, which pool workers cannot share; use "
                          "weights_manager plain or leave --nproc out")
    per_step = getattr(trainer.options, "rollouts_per_step", workers)
    if per_step < workers:
        log.warning("--nproc %d: trainer.rollouts_per_step is %d, so only %d worker(s) can be busy at a time",
                    workers, per_step, per_step)
    cfg_data = {k: v for k, v in c.config.to_dict().items() if k not in ("trainer", "controller")}
    rt = c.runtime
    device = str(rt.device) if rt is not None and getattr(rt, "device", None) is not None else "cpu"
    pool = EvalPool(cfg_data, base_dir(c.config), workers, device=device, trace_dir=trace_dir)
    inner = c.evaluator
    c.evaluator = PooledEvaluator(inner, pool, c.space)
    try:
        yield trainer
    finally:
        c.evaluator = inner
        pool.close()
