"""Library functions behind the search commands (the CLI only parses and prints).

Each takes paths and plain values and returns records, so scripts and notebooks can
call exactly what ``hwnas search`` / ``sample`` / ``eval-arch`` / ``derive`` /
``gen-config`` do.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ConfigError, HwnasError
from hwnas.inputs import output_dir, output_file
from hwnas.search.build import build_component, build_components, load_run_config, trainer_config
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOverrides:
    """What the command line changes in a search config: the hardware objective's
    ``objective`` metric and ``budget`` (ms, as a constraint), the trainer's ``steps``, and
    the async trainer's Ray cluster (``ray_address``). None leaves the config's value."""

    objective: str | None = None
    budget: float | None = None
    steps: int | None = None
    ray_address: str | None = None


def run_search(config: str | Path, overrides: SearchOverrides | None = None, *, run_dir: str | Path | None = None,
               restart: bool = False, device: str | None = None, nproc: int = 1) -> dict[str, Any]:
    """Run (or resume) the search a config describes; returns the trainer's summary.
    ``nproc`` > 1 (or torchrun) runs it as DDP ranks: shared-weight training is split
    over them, rank 0 alone writes the run directory."""
    from hwnas.search.distributed import run_distributed
    from hwnas.search.runtime import exec_options

    overrides_kw = asdict(overrides or SearchOverrides())
    cfg = load_run_config(config, **overrides_kw)
    rd = run_dir or cfg.run.dir
    if rd is None:
        rd = Path("runs") / Path(config).stem
    rd = Path(rd)
    if not rd.is_absolute() and run_dir is None and cfg.source is not None and cfg.run.dir:
        rd = cfg.source.resolve().parent / rd
    if restart and rd.exists():
        for name in ("checkpoint.json", "rollouts.csv", "pareto.yaml", "pareto.png", "summary.yaml"):
            (rd / name).unlink(missing_ok=True)
        for pt in rd.glob("checkpoint-*.pt"):
            pt.unlink()
    if run_dir is not None:
        output_dir(rd, "run directory", create=False)
    _check_nproc(cfg, nproc)
    from hwnas.search.trainers.pool import pool_applies

    if nproc > 1 and pool_applies(cfg):  # tune & co: candidates split over N workers, each evaluated once
        return run_distributed(_search_rank, 1, exec_options(cfg.run, device), str(config), overrides_kw, str(rd),
                               nproc)
    return run_distributed(_search_rank, nproc, exec_options(cfg.run, device), str(config), overrides_kw, str(rd))


def _check_nproc(cfg: Any, nproc: int) -> None:
    """Refuse ``--nproc`` before spawning for a trainer that runs in one process only."""
    from hwnas import registry

    tc = trainer_config(cfg)
    if nproc > 1 and not getattr(registry.get("trainer", tc.type), "supports_nproc", True):
        from hwnas.search.trainers.differentiable import nproc_refusal

        raise ConfigError(nproc_refusal(nproc, tc.type))


def _search_rank(rt: Any, config: str, overrides: dict[str, Any], run_dir: str, pool: int = 1) -> dict[str, Any]:
    """One rank (or the only process) of :func:`run_search`; ``pool`` > 1: its evaluations
    split over that many worker processes (see :mod:`hwnas.search.trainers.pool`)."""
    cfg = load_run_config(config, **overrides)
    comps = build_components(cfg, runtime=rt)
    trainer = build_component(trainer_config(cfg), components=comps, run_dir=Path(run_dir), seed=cfg.seed)
    if pool > 1:
        from hwnas.search.trainers.pool import pooled

        with pooled(trainer, pool):
            return trainer.run()
    return trainer.run()


def parse_arch(space: SearchSpace, text: str) -> Arch:
    """An architecture from the space's string form, or from '-'-joined choice indices."""
    try:
        return space.from_str(text)
    except HwnasError as first:
        try:
            return space.validate([int(t) for t in text.replace(",", "-").split("-")])
        except (ValueError, HwnasError):
            raise ConfigError(f"arch: {first}") from None


def sample_archs(config: str | Path | None = None, *, space: str | None = None, n: int = 5,
                 seed: int = 0, device: str | None = None) -> list[dict[str, Any]]:
    """``n`` architectures from a config's controller, a search run's trained controller
    (``config`` is its run directory), or uniformly from a space."""
    if config is not None and Path(config).is_dir():
        from hwnas.search.fromrun import sample_trained

        return sample_trained(config, n)
    if config is not None:
        comps = build_components(load_run_config(config), device=device)
        assert comps.controller is not None
        sp = comps.space
        archs = [r.arch for r in comps.controller.sample(n)]
    elif space is not None:
        from hwnas import registry

        sp = registry.get("search_space", space)()
        rng = np.random.default_rng(seed)
        archs = [sp.sample(rng) for _ in range(n)]
    else:
        raise ConfigError("sample: give a config or a search space name")
    return [{"arch_str": sp.to_str(a), "arch": "-".join(map(str, a))} for a in archs]


def evaluate_archs(config: str | Path, archs: list[str] | None = None, *, n: int = 0,
                   load: str | Path | None = None, device: str | None = None) -> list[dict[str, Any]]:
    """Evaluate given architectures (strings), or ``n`` random ones, with the config's evaluator;
    ``load``: a search run directory whose trained shared weights (supernet) score them."""
    cfg = load_run_config(config)
    comps = build_components(cfg, controller=False, device=device)
    if comps.evaluator is None:
        raise ConfigError(f"evaluator: section missing from {config} (tune, predictor, ...)")
    if load is not None:
        from hwnas.search.fromrun import load_trained_weights

        load_trained_weights(comps, load, config)
    sp = comps.space
    if archs:
        rollouts = [Rollout(parse_arch(sp, a)) for a in archs]
    else:
        rng = np.random.default_rng(cfg.seed)
        rollouts = [Rollout(sp.sample(rng)) for _ in range(n)]
    if getattr(comps.evaluator, "needs_candidates", True) and comps.weights_manager is not None:
        for r in rollouts:
            r.candidate = comps.weights_manager.assemble_candidate(r)
    comps.evaluator.evaluate(rollouts)
    from hwnas.search.objectives import is_feasible

    return [{"arch_str": sp.to_str(r.arch), **{k: float(v) for k, v in sorted(r.perfs.items())},
             "reward": r.reward, "feasible": is_feasible(comps.objective, r.perfs)} for r in rollouts]


def derive_archs(run_dir: str | Path, *, top: int = 5, out: str | Path | None = None,
                 source: str = "history") -> list[dict[str, Any]]:
    """Best feasible distinct architectures of a run (``source`` history), or those its trained
    controller ranks highest (``source`` controller); written as YAML to ``out`` (default
    RUN_DIR/best.yaml)."""
    from hwnas.search.report import derive, write_yaml

    if source == "controller":
        from hwnas.search.fromrun import derive_trained

        target = output_file(out, "architecture file") if out else Path(run_dir) / "best.yaml"
        best = derive_trained(run_dir, top)
    elif source == "history":
        target = output_file(out, "architecture file") if out else Path(run_dir) / "best.yaml"
        best = derive(Path(run_dir), top)
    else:
        raise ConfigError(f"derive --from: expected history or controller, got {source!r}")
    write_yaml(target, best)
    return best
