"""A run's YAML -> frozen dataclasses, validated at load.

Each component class declares its options as a frozen dataclass in a nested class
``Options``. Fields carry their type in the annotation and their limits in
``field(metadata=...)``: ``min``/``max`` (inclusive), ``gt``/``lt`` (exclusive),
``choices``, ``odd`` (integers), ``unique`` (lists), ``asset`` (the kind of shipped
``asset:NAME`` a path option accepts; checked here, resolved by the cost-source factory)
and ``help`` (used by ``hwnas gen-config``). The ``run:`` section is typed the same way
(:mod:`hwnas.run_section`). An ``Options.check()``
method may enforce cross-field rules by raising :class:`ConfigError` with the field
name(s). Every error is one line that starts with the YAML path::

    controller.population: must be > 0, got -3
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hwnas import registry
from hwnas.errors import ConfigError, HwnasError
from hwnas.inputs import short
from hwnas.options import NoOptions, opt, options_to_dict, parse_options
from hwnas.options import suggest as _suggest
from hwnas.yamlio import read_yaml

if typing.TYPE_CHECKING:
    from hwnas.run_section import RunOptions

#: Config sections that name a component, in iteration order, and their registry roles.
SECTIONS: dict[str, str] = {
    "dataset": "dataset",
    "search_space": "search_space",
    "controller": "controller",
    "weights_manager": "weights_manager",
    "evaluator": "evaluator",
    "objective": "objective",
    "trainer": "trainer",
}


@dataclass(frozen=True)
class ComponentConfig:
    """One section: the component's role, registered type name and validated options."""

    role: str
    type: str
    options: Any

    def build(self, **extra: Any) -> Any:
        cls = registry.get(self.role, self.type)
        return cls(self.options, **extra) if hasattr(cls, "Options") else cls(**extra)


def _default_run() -> RunOptions:
    from hwnas.run_section import RunOptions  # it builds on opt() above: imported when first needed

    return RunOptions()


@dataclass(frozen=True)
class RunConfig:
    """A whole run: seed, the typed ``run`` section and the component sections present."""

    components: Mapping[str, ComponentConfig]
    seed: int = 0
    run: RunOptions = field(default_factory=_default_run)
    source: Path | None = None

    def __getitem__(self, section: str) -> ComponentConfig:
        try:
            return self.components[section]
        except KeyError:
            raise ConfigError(f"{section}: section missing from {self.source or 'the config'}") from None

    def __contains__(self, section: str) -> bool:
        return section in self.components

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed}
        if self.run != _default_run():
            out["run"] = options_to_dict(self.run)
        for name, comp in self.components.items():
            out[name] = {"type": comp.type, **options_to_dict(comp.options)}
        return out


def options_class(role: str, type_name: str) -> type:
    cls = registry.get(role, type_name)
    return getattr(cls, "Options", NoOptions)


def parse_component(section: str, data: Any, base: Path | None = None, role: str | None = None) -> ComponentConfig:
    role = role or SECTIONS[section]
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section}: expected a mapping with 'type', got {short(data)}")
    if "type" not in data:
        raise ConfigError(f"{section}.type: required (one of {', '.join(e.name for e in registry.list(role))})")
    type_name = data["type"]
    if not isinstance(type_name, str):
        raise ConfigError(f"{section}.type: expected a string, got {short(type_name)}")
    try:
        cls = options_class(role, type_name)
    except HwnasError as exc:
        raise ConfigError(f"{section}.type: {exc}") from None
    opts = parse_options(cls, {k: v for k, v in data.items() if k != "type"}, section, base)
    return ComponentConfig(role, type_name, opts)


def parse_config(data: Any, *, source: Path | None = None, base: Path | None = None) -> RunConfig:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source or 'config'}: expected a mapping at the top level, got {type(data).__name__}")
    known = [*SECTIONS, "seed", "run"]
    for key in data:
        if key not in known:
            raise ConfigError(f"{key}: unknown section{_suggest(str(key), known)}; sections: {', '.join(known)}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed: expected an integer >= 0, got {short(seed)}")
    from hwnas.run_section import RunOptions

    run = data.get("run") or {}
    if not isinstance(run, Mapping):
        raise ConfigError(f"run: expected a mapping, got {short(run)}")
    comps = {s: parse_component(s, data[s], base) for s in SECTIONS if s in data}
    return RunConfig(comps, seed, parse_options(RunOptions, run, "run", base), source)


def parse_kv(items: list[str] | None, flag: str = "--space-opt") -> dict[str, Any]:
    """Command-line ``KEY=VALUE`` pairs; values are read as YAML scalars or lists
    (``width=0.5``, ``kernels=[3,5]``), so the same option types as in a config file."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"{flag}: expected KEY=VALUE, got {short(item)}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError:
            raise ConfigError(f"{flag} {k}: cannot read value {short(v)}") from None
    return out


def build_named(role: str, name: str, options: Mapping[str, Any] | None = None, path: str | None = None) -> Any:
    """A registered component built from a plain mapping of options, validated like a
    config section (errors name ``path``, default ``ROLE NAME``)."""
    cls = registry.get(role, name)
    options_cls = getattr(cls, "Options", None)
    if options_cls is None:
        if options:
            raise ConfigError(f"{path or f'{role} {name}'}: takes no options, got {', '.join(options)}")
        return cls()
    return cls(parse_options(options_cls, options, path or f"{role} {name}"))


def build_space(name: str, options: Mapping[str, Any] | None = None, path: str | None = None) -> Any:
    """The one way to build a registered search space from plain options (validated like a
    config section; errors name ``path``, default ``space NAME``)."""
    return build_named("search_space", name, options, path or f"space {name}")


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config; relative paths resolve against its folder."""
    p = Path(path)
    data = read_yaml(p)
    try:
        return parse_config(data, source=p, base=p.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


__all__ = ["ComponentConfig", "NoOptions", "RunConfig", "load_config", "opt", "options_to_dict", "build_named",
           "build_space", "parse_component", "parse_config", "parse_kv", "parse_options", "read_yaml", "SECTIONS",
           "typing"]
