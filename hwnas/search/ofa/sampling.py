"""Subnets of a trained supernet run, scored with the weights they inherit.

An accuracy predictor is only as good as its labels. OFA labels a subnet by the
accuracy it has with the supernet's weights after its BatchNorm statistics are
recomputed on a few training batches (shared running statistics belong to no
particular subnet), on images the supernet never trained on. Here: the run's dataset,
BN recalibrated on the same ``calib_batches`` training batches for every subnet (seeded),
accuracy on the whole ``valid`` split (the supernet trains on ``train``; ``test`` is
left for the final test of a derived subnet).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hwnas import registry
from hwnas.config import RunConfig, options_to_dict
from hwnas.errors import ConfigError
from hwnas.search.build import build_components
from hwnas.search.datasets.base import Dataset
from hwnas.search.evaluators.mepa import score_with_recalibrated_bn
from hwnas.search.fromrun import run_state
from hwnas.search.rollout import Rollout
from hwnas.search.runtime import Runtime
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.training import first_batches, inputs_of

log = logging.getLogger(__name__)


@dataclass
class SupernetRun:
    """A trained supernet search run: its config, space, dataset and restored weights."""

    run_dir: Path
    config: RunConfig
    space: SearchSpace
    dataset: Dataset
    weights_manager: Any
    runtime: Runtime

    def space_id(self) -> dict[str, Any]:
        """The space's name and options (what a predictor or an arch file must match)."""
        return {"type": self.space.name, **options_to_dict(self.space.options)}  # type: ignore[attr-defined]


def open_supernet_run(run_dir: str | Path, device: str | None = None) -> SupernetRun:
    """The run's components with its shared weights restored; a run that is not a
    supernet run (no elastic weights manager, or no saved weights) is one line."""
    rd = Path(run_dir)
    cfg, state = run_state(rd)
    wm_type = cfg["weights_manager"].type if "weights_manager" in cfg else "plain"
    if not callable(getattr(registry.get("weights_manager", wm_type), "extreme_arch", None)):
        raise ConfigError(f"{rd}: not a supernet run (its weights_manager is {wm_type!r}, which holds no "
                          "elastic shared weights; train one with mbv3_supernet, supernet (mbv2) or nb201_supernet)")
    comps = build_components(cfg, controller=False, device=device)
    wm = comps.weights_manager
    assert wm is not None and hasattr(wm, "module")
    saved = state.get("weights_manager")
    if not isinstance(saved, Mapping) or not saved:
        raise ConfigError(f"{rd}: not a supernet run (its checkpoint holds no shared weights)")
    if comps.dataset is None:
        raise ConfigError(f"{rd}: its config has no dataset section; subnets cannot be scored")
    try:
        wm.load_state_dict(saved)
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{rd}: its checkpoint's weights do not fit its config ({first})") from None
    comps.runtime.model(wm.module)
    return SupernetRun(rd, cfg, comps.space, comps.dataset, wm, comps.runtime)


def sample_archs(space: SearchSpace, n: int, seed: int, extremes: Sequence[Arch] = ()) -> list[Arch]:
    """``n`` distinct subnets (canonical: inactive choices zeroed): ``extremes`` first,
    then uniform samples; fewer when the space holds fewer."""
    rng = np.random.default_rng(seed)
    seen: dict[Arch, None] = {}
    for a in extremes:
        seen.setdefault(space.canonical(space.validate(a)), None)
    tries = 0
    while len(seen) < n and tries < 50 * n:
        seen.setdefault(space.canonical(space.sample(rng)), None)
        tries += 1
    return list(seen)[:n]


def score_subnets(run: SupernetRun, archs: Sequence[Arch], *, calib_batches: int = 2, batch_size: int = 256,
                  seed: int = 0, on_done: Callable[[int], None] | None = None) -> list[dict[str, float]]:
    """Accuracy and loss of each subnet with the inherited weights, BN recalibrated on
    the same training batches, on the whole valid split."""
    ds = run.dataset
    held = list(ds.loader("valid", batch_size=batch_size, shuffle=False))
    if not held:
        raise ConfigError(f"{run.run_dir}: its dataset has an empty valid split; subnets are scored on it "
                          "(set dataset.valid_fraction > 0)")
    calib = inputs_of(first_batches(ds.loader("train", batch_size=batch_size, shuffle=True, seed=seed + 17),
                                    calib_batches))
    wm = run.weights_manager
    out = []
    for i, a in enumerate(archs):
        cand = wm.assemble_candidate(Rollout(a))
        out.append(score_with_recalibrated_bn(cand, wm.module, calib, held, run.runtime))
        if on_done is not None:
            on_done(i + 1)
    return out
