"""Building search-engine components from a role's example run config.

The search roles' ``example(tmp_dir)`` hook returns a run config (the mapping a YAML
file holds). The suites validate it with the real config parser and build each
section the way a run does, so an example that works here works in ``hwnas search``.
Unlike a run, every section is optional: a controller needs only a space.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hwnas.config import RunConfig, parse_config
from hwnas.errors import HwnasError
from hwnas.search.rollout import Rollout
from hwnas.testing._common import ContractError, component, example, expect

#: Sections an example may leave out.
DEFAULTS: dict[str, dict[str, Any]] = {"search_space": {"type": "toy", "n": 6, "k": 4},
                                       "weights_manager": {"type": "plain"}}


@dataclass
class Parts:
    """The components of an example config (None where the config has no section)."""

    config: RunConfig
    space: Any
    dataset: Any = None
    objective: Any = None
    weights_manager: Any = None
    evaluator: Any = None
    controller: Any = None


def example_config(role: str, name: str, tmp_dir: Path, **override: Any) -> RunConfig:
    """The validated example run config of ``role`` ``name``; ``override`` updates the
    options of the role's own section (e.g. ``steps`` of a trainer)."""
    cls = component(role, name)
    data = example(role, name, cls, tmp_dir)
    expect(isinstance(data, Mapping), role, name, f"example() must return a run-config mapping, got {data!r}")
    data = {**DEFAULTS, **data}
    own = data.get(role)
    expect(isinstance(own, Mapping) and own.get("type") == name, role, name,
           f"example() must hold a {role!r} section of type {name!r}, got {own!r}")
    data[role] = {**own, **override}
    try:
        return parse_config(data, source=tmp_dir / f"example-{role}-{name}.yaml", base=tmp_dir)
    except HwnasError as exc:
        raise ContractError(f"{role} {name!r}: example() config is not valid: {exc}") from None


def build(cfg: RunConfig, *, controller: bool = True, seed: int | None = None) -> Parts:
    """Build the sections present, in dependency order, as ``hwnas search`` does."""
    from hwnas.search.build import build_component, check_shapes

    seed = cfg.seed if seed is None else seed
    base_dir = cfg.source.parent if cfg.source is not None else Path.cwd()
    space = cfg["search_space"].build()
    dataset = build_component(cfg["dataset"], seed=seed) if "dataset" in cfg else None
    check_shapes(space, dataset)
    common = {"space": space, "dataset": dataset, "seed": seed, "base_dir": base_dir}
    parts = Parts(cfg, space, dataset)
    if "objective" in cfg:
        parts.objective = build_component(cfg["objective"], **common)
    parts.weights_manager = build_component(cfg["weights_manager"], **common)
    if "evaluator" in cfg:
        parts.evaluator = build_component(cfg["evaluator"], objective=parts.objective,
                                          weights_manager=parts.weights_manager, **common)
    if controller and "controller" in cfg:
        parts.controller = build_component(cfg["controller"], space=space, seed=seed)
        set_dirs = getattr(parts.controller, "set_directions", None)
        if callable(set_dirs) and parts.objective is not None:
            set_dirs(parts.objective.directions())
    return parts


def example_parts(role: str, name: str, tmp_dir: Path, **override: Any) -> Parts:
    """:func:`example_config` then :func:`build`; a build failure names the component."""
    cfg = example_config(role, name, tmp_dir, **override)
    try:
        return build(cfg)
    except HwnasError as exc:
        raise ContractError(f"{role} {name!r}: building its example config fails: {exc}") from None


def sample_rollouts(parts: Parts, n: int, seed: int = 0) -> list[Rollout]:
    """``n`` distinct random architectures of the space (fewer if the space is smaller)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    seen: dict[tuple[int, ...], None] = {}
    for _ in range(50 * n):
        seen.setdefault(parts.space.canonical(parts.space.sample(rng)))
        if len(seen) == n:
            break
    return [Rollout(a) for a in seen]


def candidates(parts: Parts, rollouts: list[Rollout]) -> list[Any]:
    """Candidate networks of rollouts from the example's weights manager (kept on them)."""
    for r in rollouts:
        if r.candidate is None:
            r.candidate = parts.weights_manager.assemble_candidate(r)
    return [r.candidate for r in rollouts]
