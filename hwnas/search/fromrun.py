"""Starting from a trained search run: its controller and its shared weights.

A search leaves its config (``config.yaml``) and the state of every component
(``checkpoint.json`` + tensors) in its run directory, so what it learned can be used
without searching again: samples of the trained controller (``hwnas sample RUN_DIR``),
the architectures the trained controller itself ranks highest - not only the best ones
it happened to evaluate (``hwnas derive RUN_DIR --from controller``, through
:meth:`Controller.ranked`) - and the trained supernet scoring given architectures
(``hwnas eval-arch CONFIG --load RUN_DIR``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from hwnas.config import RunConfig, options_to_dict
from hwnas.errors import ConfigError, HwnasError
from hwnas.search.build import SearchComponents, build_components, load_run_config
from hwnas.search.report import arch_record, read_history
from hwnas.search.rollout import Rollout
from hwnas.search.trainers.checkpoint import load_checkpoint


def run_state(run_dir: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """The config and checkpointed state of a search run directory."""
    rd = Path(run_dir)
    cfg_path = rd / "config.yaml"
    if not rd.is_dir() or not cfg_path.is_file():
        raise HwnasError(f"{rd}: not a search run directory (no config.yaml)")
    state = load_checkpoint(rd)
    if state is None:
        raise HwnasError(f"{rd}: no checkpoint.json; the search has not saved a checkpoint yet")
    return load_run_config(cfg_path), state


def trained_components(run_dir: str | Path) -> SearchComponents:
    """The run's components with the controller (and weights) restored from its checkpoint."""
    cfg, state = run_state(run_dir)
    comps = build_components(cfg)
    assert comps.controller is not None
    if state.get("controller"):
        comps.controller.load_state_dict(state["controller"])
    if state.get("weights_manager") and comps.weights_manager is not None:
        comps.weights_manager.load_state_dict(state["weights_manager"])
    return comps


def sample_trained(run_dir: str | Path, n: int) -> list[dict[str, Any]]:
    """``n`` proposals of the run's trained controller."""
    comps = trained_components(run_dir)
    assert comps.controller is not None
    sp = comps.space
    return [{"arch_str": sp.to_str(r.arch), "arch": "-".join(map(str, r.arch))} for r in comps.controller.sample(n)]


def derive_trained(run_dir: str | Path, top: int) -> list[dict[str, Any]]:
    """The architectures the run's trained controller ranks highest, as derive records
    (perfs and reward from the history where the run evaluated them)."""
    comps = trained_components(run_dir)
    ctrl, sp = comps.controller, comps.space
    assert ctrl is not None
    ranked = ctrl.ranked(top)
    if not ranked:
        raise HwnasError(f"{run_dir}: controller {ctrl.registry_name!r} cannot rank its own proposals; "
                         "use `hwnas derive RUN_DIR` (best of the history)")
    seen = {sp.canonical(r.arch): r for r in read_history(Path(run_dir)) if r.reward is not None}
    out = []
    for arch, score in ranked:
        r = seen.get(sp.canonical(arch))
        rec = arch_record(r if r is not None else Rollout(arch), sp)
        rec["arch_str"], rec["arch"] = sp.to_str(arch), arch_record(Rollout(arch), sp)["arch"]
        out.append({**rec, "score": float(score), "evaluated": r is not None})
    return out


def _space_id(cfg: RunConfig) -> tuple[str, dict[str, Any]]:
    comp = cfg["search_space"]
    return comp.type, options_to_dict(comp.options)


def load_trained_weights(comps: SearchComponents, run_dir: str | Path, config: str | Path) -> None:
    """Put the shared weights of a search run into ``comps.weights_manager`` (same space only)."""
    run_cfg, state = run_state(run_dir)
    mine, theirs = _space_id(comps.config), _space_id(run_cfg)
    if mine != theirs:
        diff = _describe(mine, theirs)
        raise ConfigError(f"{run_dir}: searched space {diff[1]} but {config} uses {diff[0]}")
    wm = comps.weights_manager
    if wm is None or not hasattr(wm, "module"):
        raise ConfigError(f"{config}: weights_manager {getattr(wm, 'registry_name', None)!r} has no shared "
                          "weights to load (use a supernet, e.g. nb201_supernet)")
    saved = state.get("weights_manager")
    if not isinstance(saved, Mapping) or not saved:
        raise ConfigError(f"{run_dir}: its checkpoint holds no shared weights (was it a supernet search?)")
    try:
        wm.load_state_dict(saved)
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{run_dir}: its weights do not fit {config}'s weights manager ({first})") from None


def _describe(mine: tuple[str, dict[str, Any]], theirs: tuple[str, dict[str, Any]]) -> tuple[str, str]:
    """Short descriptions of two spaces: the type, or the first option that differs."""
    if mine[0] != theirs[0]:
        return repr(mine[0]), repr(theirs[0])
    for k in sorted(set(mine[1]) | set(theirs[1])):
        if mine[1].get(k) != theirs[1].get(k):
            return f"{mine[0]} with {k}={mine[1].get(k)!r}", f"{theirs[0]} with {k}={theirs[1].get(k)!r}"
    return repr(mine[0]), repr(theirs[0])
