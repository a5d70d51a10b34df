"""Multi-process training with torch.distributed: spawned by hwnas, or launched by torchrun.

``hwnas train --nproc N`` / ``hwnas search --nproc N`` start N processes with
``torch.multiprocessing`` (a file rendezvous in a temporary folder, so no port can
clash); under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in the
environment) the process joins the group torchrun set up instead. The backend is
gloo on the CPU and nccl on CUDA, where rank *r* uses GPU ``LOCAL_RANK``.

Results cross the process boundary as JSON files in the rendezvous folder (no pickled
objects, and no pipe whose buffer a large result could fill while the parent waits), and a
user error in any rank comes back to the caller as the same one-line HwnasError.

Teardown is orderly: when ``fn`` returns, the rank first frees what it built (a DDP
reducer holds the group), then waits for every rank at a barrier with a timeout, and only
then destroys the group. Destroying it while a peer is still inside its last collective
or still holds its reducer aborts that peer (``terminate called without an active
exception``). Every collective has a finite timeout, so a lost rank fails the run instead
of hanging it.
"""
from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import tempfile
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from hwnas.errors import ConfigError, HwnasError
from hwnas.run_section import ExecOptions
from hwnas.search.runtime import Runtime, resolve_device

log = logging.getLogger(__name__)

#: The longest any one collective (and the rendezvous) may wait for the other ranks: a
#: lost rank fails the run with an error instead of hanging it (torch's default is 30 min).
COLLECTIVE_TIMEOUT = timedelta(minutes=10)
#: How long a rank that finished waits at the teardown barrier for the slowest rank's last
#: step (ranks finish within one step of each other; the slowest step of a search is seconds).
TEARDOWN_TIMEOUT = timedelta(minutes=5)


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
    """Join a process group (gloo on the CPU, nccl on CUDA) and yield this rank's Runtime;
    leave it in order (see the module's docstring)."""
    import torch.distributed as dist

    dev = rank_device(o, local_rank, world)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world,
                            timeout=COLLECTIVE_TIMEOUT)
    finished = False
    try:
        yield Runtime.from_options(o, device=dev, rank=rank, world=world)
        finished = True
    finally:
        _leave(finished, dev)


def _leave(finished: bool, dev: torch.device) -> None:
    """Free this rank's DDP wrappers, meet the other ranks (when this one finished), destroy.

    After an error no barrier: the other ranks may never arrive, and the spawner (or
    torchrun) stops them. nccl's destroy can block on a peer's unfinished collective, so a
    failed nccl rank leaves the group to the process's exit."""
    import torch.distributed as dist

    gc.collect()  # DDP wrappers sit in reference cycles: free their reducers while the group lives
    if finished:
        ids = [dev.index] if dev.type == "cuda" and dev.index is not None else None
        dist.barrier(device_ids=ids, timeout=TEARDOWN_TIMEOUT)
    if finished or dist.get_backend() == "gloo":
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


def _worker(rank: int, world: int, folder: str, fn: Callable[..., Any], o: ExecOptions, args: tuple) -> None:
    """One spawned rank: join the group, run ``fn(runtime, *args)``, reply in ``folder``
    (rank 0 its result; any rank its error)."""
    try:
        with process_group(o, rank, world, rank, init_method=f"file://{os.path.join(folder, 'rendezvous')}") as rt:
            out = fn(rt, *args)
        if rank == 0:
            _reply(folder, rank, {"ok": True, "result": out})
    except HwnasError as exc:
        _reply(folder, rank, {"ok": False, "user": True, "error": str(exc), "rank": rank})
        raise SystemExit(2) from None  # a failed exit: the spawner stops the ranks still waiting for this one
    except BaseException as exc:  # a bug: keep the traceback for the parent
        _reply(folder, rank, {"ok": False, "user": False, "error": f"{type(exc).__name__}: {exc}",
                              "trace": traceback.format_exc(), "rank": rank})
        raise


def _reply(folder: str, rank: int, reply: dict[str, Any]) -> None:
    """Write one rank's reply atomically (a reader never sees half a file)."""
    path = Path(folder) / f"reply-{rank}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(reply, default=str))
    os.replace(tmp, path)


def _replies(folder: str) -> list[dict[str, Any]]:
    """The replies the ranks left, by rank."""
    paths = sorted(Path(folder).glob("reply-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    return [json.loads(p.read_text()) for p in paths]


def spawn(fn: Callable[..., Any], nproc: int, o: ExecOptions, *args: Any) -> Any:
    """Run ``fn(runtime, *args)`` in ``nproc`` spawned ranks; returns rank 0's (JSON-able) result.

    ``fn`` must be importable (a module-level function) and its result JSON-able."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="hwnas-ddp-") as tmp:
        try:
            mp.start_processes(_worker, args=(nproc, tmp, fn, o, args), nprocs=nproc, join=True,
                               start_method="spawn")
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as exc:
            _raise_failed(_replies(tmp))
            raise RuntimeError(f"distributed run failed: {exc}") from None
        replies = _replies(tmp)
    _raise_failed(replies)
    ok = [r for r in replies if r["ok"]]
    if not ok:
        raise HwnasError(f"distributed run with {nproc} processes returned no result")
    return ok[0]["result"]


def _raise_failed(replies: list[dict[str, Any]]) -> None:
    """Raise the failure a rank reported, if any: a user error first (the cause; the other
    ranks then fail in a collective it left), else the lowest rank's."""
    failed = sorted((r for r in replies if not r["ok"]), key=lambda r: not r.get("user"))
    if failed:
        _raise_reply(failed[0])


def _raise_reply(reply: dict[str, Any]) -> None:
    if reply.get("user"):
        raise HwnasError(reply["error"])
    raise RuntimeError(f"rank {reply.get('rank')} failed: {reply['error']}\n{reply.get('trace', '')}")


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
