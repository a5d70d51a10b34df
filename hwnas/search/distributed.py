"""Multi-process training with torch.distributed: spawned by hwnas, or launched by torchrun.

``hwnas train --nproc N`` / ``hwnas search --nproc N`` start N processes with
``torch.multiprocessing`` (a file rendezvous in a temporary folder, so no port can
clash); under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in the
environment) the process joins the group torchrun set up instead. The backend is
gloo on the CPU and nccl on CUDA, where rank *r* uses GPU ``LOCAL_RANK``.

Results cross the process boundary as JSON text (no pickled objects), and a user
error in any rank comes back to the caller as the same one-line HwnasError.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import traceback
from typing import Any, Callable, Iterator

import torch

from hwnas.errors import ConfigError, HwnasError
from hwnas.run_section import ExecOptions
from hwnas.search.runtime import Runtime, resolve_device

log = logging.getLogger(__name__)


def torchrun_env() -> tuple[int, int, int] | None:
    """(rank, world, local rank) when started by torchrun (or any env:// launcher)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return rank, world, int(os.environ.get("LOCAL_RANK", rank))


def rank_device(o: ExecOptions, local_rank: int, world: int) -> torch.device:
    """The device of one rank: ``cuda:LOCAL_RANK`` on CUDA (one GPU per process), else the CPU."""
    dev = resolve_device(o.device)
    if dev.type != "cuda" or world == 1:
        return dev
    if dev.index not in (None, 0) and world > 1:
        raise ConfigError(f"--device {o.device}: with several processes each rank takes cuda:LOCAL_RANK; "
                          "use --device cuda")
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise ConfigError(f"--nproc: {world} processes on this node but only {n} CUDA device(s)")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def process_group(o: ExecOptions, rank: int, world: int, local_rank: int,
                  init_method: str = "env://") -> Iterator[Runtime]:
    """Join a process group (gloo on the CPU, nccl on CUDA) and yield this rank's Runtime."""
    import torch.distributed as dist

    dev = rank_device(o, local_rank, world)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world)
    try:
        yield Runtime.from_options(o, device=dev, rank=rank, world=world)
    finally:
        dist.destroy_process_group()


def barrier(rt: Runtime | None) -> None:
    """Wait for every rank (a no-op alone)."""
    if rt is not None and rt.distributed:
        import torch.distributed as dist

        dist.barrier()


def wrap(module: torch.nn.Module, rt: Runtime, *, find_unused: bool = False) -> torch.nn.Module:
    """``module`` wrapped in DistributedDataParallel when the run is distributed.
    ``find_unused``: supernet steps use only the sampled subnet's parameters."""
    if not rt.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [rt.device.index] if rt.device.type == "cuda" else None
    return DDP(module, device_ids=ids, find_unused_parameters=find_unused)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (what checkpoints hold, so they resume in any mode)."""
    return getattr(module, "module", module)


def _worker(rank: int, world: int, init_file: str, fn: Callable[..., Any], o: ExecOptions, args: tuple,
            queue: Any) -> None:
    """One spawned rank: join the group, run ``fn(runtime, *args)``, report as JSON."""
    try:
        with process_group(o, rank, world, rank, init_method=f"file://{init_file}") as rt:
            out = fn(rt, *args)
        if rank == 0:
            queue.put(json.dumps({"ok": True, "result": out}, default=str))
    except HwnasError as exc:
        queue.put(json.dumps({"ok": False, "user": True, "error": str(exc), "rank": rank}))
    except BaseException as exc:  # a bug: keep the traceback for the parent
        queue.put(json.dumps({"ok": False, "user": False, "error": f"{type(exc).__name__}: {exc}",
                              "trace": traceback.format_exc(), "rank": rank}))
        raise


def spawn(fn: Callable[..., Any], nproc: int, o: ExecOptions, *args: Any) -> Any:
    """Run ``fn(runtime, *args)`` in ``nproc`` spawned ranks; returns rank 0's (JSON-able) result.

    ``fn`` must be importable (a module-level function) and its result JSON-able."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    with tempfile.TemporaryDirectory(prefix="hwnas-ddp-") as tmp:
        init_file = os.path.join(tmp, "rendezvous")
        try:
            mp.start_processes(_worker, args=(nproc, init_file, fn, o, args, queue), nprocs=nproc, join=True,
                               start_method="spawn")
        except mp.ProcessRaisedException as exc:
            _raise_first(queue, exc)
        except mp.ProcessExitedException as exc:
            _raise_first(queue, exc)
        replies = _drain(queue)
    failed = [r for r in replies if not r["ok"]]
    if failed:
        _raise_reply(failed[0])
    ok = [r for r in replies if r["ok"]]
    if not ok:
        raise HwnasError(f"distributed run with {nproc} processes returned no result")
    return ok[0]["result"]


def _drain(queue: Any) -> list[dict[str, Any]]:
    out = []
    while not queue.empty():
        out.append(json.loads(queue.get()))
    return out


def _raise_reply(reply: dict[str, Any]) -> None:
    if reply.get("user"):
        raise HwnasError(reply["error"])
    raise RuntimeError(f"rank {reply.get('rank')} failed: {reply['error']}\n{reply.get('trace', '')}")


def _raise_first(queue: Any, exc: BaseException) -> None:
    for r in _drain(queue):
        if not r["ok"]:
            _raise_reply(r)
    raise RuntimeError(f"distributed run failed: {exc}") from None


def run_distributed(fn: Callable[..., Any], nproc: int, o: ExecOptions, *args: Any) -> Any:
    """``fn(runtime, *args)`` alone (nproc 1), in spawned ranks, or in the torchrun group
    this process belongs to (every rank returns its own result then)."""
    env = torchrun_env()
    if env is not None and env[1] > 1:
        rank, world, local = env
        if nproc not in (1, world):
            raise ConfigError(f"--nproc {nproc}: torchrun started {world} processes; leave --nproc out")
        with process_group(o, rank, world, local) as rt:
            return fn(rt, *args)
    if nproc > 1:
        return spawn(fn, nproc, o, *args)
    return fn(Runtime.from_options(o), *args)
