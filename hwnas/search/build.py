"""A run's config -> its components, plus the command-line overrides of a config.

Every component is built from its section's options and the objects it needs; the
keyword arguments each constructor accepts are read from its signature, so a component
written in parallel (e.g. a shared-weights evaluator) takes just what it declares.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hwnas import registry
from hwnas.config import ComponentConfig, RunConfig, parse_component, parse_config
from hwnas.errors import ConfigError
from hwnas.search.controllers.base import Controller
from hwnas.search.datasets.base import Dataset
from hwnas.search.evaluators.base import Evaluator
from hwnas.search.objectives.base import Objective
from hwnas.search.runtime import Runtime, runtime_for
from hwnas.search.spaces.base import SearchSpace
from hwnas.search.weights.base import WeightsManager
from hwnas.yamlio import read_yaml as config_read_yaml


@dataclass
class SearchComponents:
    """Everything one run builds from its config."""

    config: RunConfig
    space: SearchSpace
    dataset: Dataset | None
    objective: Objective
    weights_manager: WeightsManager | None
    evaluator: Evaluator | None
    controller: Controller | None
    runtime: Runtime | None = None


def build_component(comp: ComponentConfig, **available: Any) -> Any:
    """``comp.build`` with only the keyword arguments the class accepts."""
    cls = registry.get(comp.role, comp.type)
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = available
    else:
        kwargs = {k: v for k, v in available.items() if k in params}
    return comp.build(**kwargs)


def hardware_sections(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The raw hardware-objective mappings of a config (top level or composite children)."""
    obj = data.get("objective")
    if not isinstance(obj, dict):
        return []
    if obj.get("type") == "hardware":
        return [obj]
    if obj.get("type") == "composite":
        return [c for c in obj.get("objectives") or [] if isinstance(c, dict) and c.get("type") == "hardware"]
    return []


def apply_overrides(data: dict[str, Any], *, objective: str | None = None, budget: float | None = None,
                    steps: int | None = None, ray_address: str | None = None) -> dict[str, Any]:
    """Apply ``--objective``, ``--budget-ms``, ``--steps`` and ``--ray-address`` to a raw
    config mapping (in place)."""
    if objective is not None or budget is not None:
        hw = hardware_sections(data)
        if not hw:
            raise ConfigError("objective: a hardware metric or budget needs a hardware objective in the config "
                              "(objective.type: hardware, or a composite with a hardware child)")
        for h in hw:
            if objective is not None:
                h["metric"] = objective
            if budget is not None:
                h["mode"], h["budget"] = "constraint", float(budget)
    if steps is not None:
        trainer = data.setdefault("trainer", {"type": "simple"})
        if not isinstance(trainer, dict):
            raise ConfigError(f"trainer: expected a mapping, got {trainer!r}")
        trainer["steps"] = int(steps)
    if ray_address is not None:
        trainer = data.get("trainer")
        if not isinstance(trainer, dict) or trainer.get("type") != "async":
            raise ConfigError("--ray-address: needs trainer.type: async in the config (parallel evaluation on Ray)")
        trainer["ray_address"] = ray_address
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    data = config_read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_run_config(path: str | Path, **overrides: Any) -> RunConfig:
    """Read a YAML config, apply command-line overrides, validate (errors name the YAML path)."""
    p = Path(path)
    data = apply_overrides(read_yaml(p), **overrides)
    try:
        return parse_config(data, source=p, base=p.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def base_dir(cfg: RunConfig) -> Path:
    return cfg.source.resolve().parent if cfg.source is not None else Path.cwd()


def check_shapes(space: SearchSpace, dataset: Dataset | None) -> None:
    """Refuse a space whose input or classifier does not fit the dataset, before any
    training starts (a mismatch would otherwise fail deep inside a forward pass)."""
    so = getattr(space, "options", None)
    if dataset is None or so is None:
        return
    prepare = getattr(dataset, "prepare", None)
    if callable(prepare):
        prepare()
    for name in ("num_classes", "in_channels", "resolution"):
        want, got = getattr(so, name, None), getattr(dataset, name, None)
        if want is not None and got is not None and want != got:
            raise ConfigError(f"search_space.{name}: is {want} but the dataset gives {got}")


def build_components(cfg: RunConfig, *, controller: bool = True, runtime: Runtime | None = None,
                     device: str | None = None) -> SearchComponents:
    """Build the components of a run in dependency order, on ``runtime`` (default: the
    config's ``run`` settings with ``device`` applied)."""
    seed = cfg.seed
    rt = runtime if runtime is not None else runtime_for(cfg.run, device)
    space = cfg["search_space"].build()
    dataset = build_component(cfg["dataset"], seed=seed) if "dataset" in cfg else None
    check_shapes(space, dataset)
    common = {"space": space, "dataset": dataset, "seed": seed, "base_dir": base_dir(cfg), "runtime": rt}
    if "objective" not in cfg:
        raise ConfigError(f"objective: section missing from {cfg.source or 'the config'}")
    objective = build_component(cfg["objective"], **common)
    wm_cfg = cfg["weights_manager"] if "weights_manager" in cfg else parse_component(
        "weights_manager", {"type": "plain"})
    weights_manager = build_component(wm_cfg, **common)
    evaluator = None
    if "evaluator" in cfg:
        evaluator = build_component(cfg["evaluator"], objective=objective, weights_manager=weights_manager, **common)
    elif getattr(registry.get("trainer", trainer_config(cfg).type), "needs_evaluator", True):
        raise ConfigError(f"evaluator: section missing from {cfg.source or 'the config'} (tune, predictor, ...)")
    ctrl = None
    if controller:
        if "controller" not in cfg:
            raise ConfigError(f"controller: section missing from {cfg.source or 'the config'}")
        ctrl = build_component(cfg["controller"], space=space, seed=seed, weights_manager=weights_manager,
                               base_dir=common["base_dir"],
                               runtime=rt)
        check_gradients(cfg, ctrl, weights_manager)
        set_dirs = getattr(ctrl, "set_directions", None)
        if callable(set_dirs):
            set_dirs(objective.directions())
        bind = getattr(ctrl, "bind_objective", None)  # controllers that price candidates (predictor)
        if callable(bind):
            bind(objective)
    return SearchComponents(cfg, space, dataset, objective, weights_manager, evaluator, ctrl, rt)


def check_gradients(cfg: RunConfig, controller: Any, weights_manager: Any) -> None:
    """A controller that learns by gradient needs a weights manager that passes gradients."""
    if not getattr(controller, "needs_gradients", False) or getattr(weights_manager, "gives_gradients", False):
        return
    ok = [e.name for e in registry.list("weights_manager") if getattr(e.obj, "gives_gradients", False)]
    wm = cfg["weights_manager"].type if "weights_manager" in cfg else "plain"
    raise ConfigError(f"weights_manager.type: controller {cfg['controller'].type!r} learns architecture parameters "
                      f"by gradient, but {wm!r} gives no gradients to them; use {' or '.join(ok)}")


def trainer_config(cfg: RunConfig) -> ComponentConfig:
    return cfg["trainer"] if "trainer" in cfg else parse_component("trainer", {"type": "simple"})
