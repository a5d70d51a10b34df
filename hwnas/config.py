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

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Union, get_args, get_origin, get_type_hints

from hwnas import registry
from hwnas.errors import ConfigError, HwnasError
from hwnas.inputs import short
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


def opt(default: Any = dataclasses.MISSING, *, help: str = "", **limits: Any) -> Any:  # noqa: A002
    """Shorthand for a dataclass field with validation metadata."""
    meta = dict(limits, help=help)
    if isinstance(default, (list, dict, set)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class NoOptions:
    """For components without options."""


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


# ---------------------------------------------------------------------------------------
def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_type_name(get_args(tp)[0])}" if get_args(tp) else "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            Path: "a path"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, path: str, base: Path | None) -> Any:
    """Check ``value`` against annotation ``tp``; return it normalised (lists -> tuples,
    relative paths -> absolute against the YAML file)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):  # a nested options section
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return parse_options(tp, value, path, base)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path, base)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {short(value)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path}: expected one of {', '.join(repr(a) for a in get_args(tp))}, got {short(value)}"
                              + (_suggest(str(value), [str(a) for a in get_args(tp)])))
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {short(value)}")
        args = [a for a in get_args(tp) if a is not Ellipsis]
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, f"{path}[{i}]", base) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {short(value)}")
        return dict(value)
    return _coerce_scalar(value, tp, path, base)


def _coerce_scalar(value: Any, tp: Any, path: str, base: Path | None) -> Any:
    """bool, int, float (finite), str and Path (relative to the YAML file; ``asset:`` kept)."""
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {short(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {short(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {short(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {short(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {short(value)}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{path}: expected a path, got {short(value)}")
        if str(value).startswith("asset:"):  # a shipped asset (hwnas.assets), not a file path
            return Path(value)
        p = Path(value).expanduser()
        if not p.is_absolute() and base is not None:
            p = (base / p).resolve()
        return p
    return value


def _domain(meta: Mapping[str, Any]) -> str:
    """The documented domain of an option, e.g. ``odd, distinct, in [1, 9]``, stated in its
    errors; empty when its only limit is the one-sided bound an error already states."""
    lo = f"[{meta['min']}" if "min" in meta else f"({meta['gt']}" if "gt" in meta else ""
    hi = f"{meta['max']}]" if "max" in meta else f"{meta['lt']})" if "lt" in meta else ""
    parts = (["odd"] if meta.get("odd") else []) + (["distinct"] if meta.get("unique") else [])
    if lo and hi:
        parts.append(f"in {lo}, {hi}")
    return ", ".join(parts)


def _check_limits(value: Any, meta: Mapping[str, Any], path: str) -> None:
    if value is None:
        return
    domain = _domain(meta)
    tail = f" (expected {domain})" if domain else ""
    if isinstance(value, tuple) and len(value) < meta.get("min_items", 0):
        raise ConfigError(f"{path}: needs at least {meta['min_items']} item(s), got {len(value)}{tail}")
    if meta.get("unique") and isinstance(value, tuple) and len(set(value)) != len(value):
        raise ConfigError(f"{path}: items must be distinct, got {short(list(value))}{tail}")
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if meta.get("odd") and isinstance(v, int) and v % 2 == 0:
            raise ConfigError(f"{path}: must be odd, got {v}{tail}")
        if "gt" in meta and not v > meta["gt"]:
            raise ConfigError(f"{path}: must be > {meta['gt']}, got {v}{tail}")
        if "min" in meta and not v >= meta["min"]:
            raise ConfigError(f"{path}: must be >= {meta['min']}, got {v}{tail}")
        if "lt" in meta and not v < meta["lt"]:
            raise ConfigError(f"{path}: must be < {meta['lt']}, got {v}{tail}")
        if "max" in meta and not v <= meta["max"]:
            raise ConfigError(f"{path}: must be <= {meta['max']}, got {v}{tail}")
        if "choices" in meta and v not in meta["choices"]:
            raise ConfigError(f"{path}: expected one of {', '.join(map(repr, meta['choices']))}, got {short(v)}"
                              + _suggest(str(v), [str(c) for c in meta["choices"]]))


def _check_asset(value: Any, meta: Mapping[str, Any], path: str) -> None:
    """``asset:NAME`` only where the option says which kind it takes (``opt(asset=KIND)``),
    and only naming a shipped asset of that kind. The reference stays as written: the
    cost-source factory resolves it to a path when the run opens it."""
    if value is None or not str(value).startswith("asset:"):
        return
    if "asset" not in meta:
        raise ConfigError(f"{path}: takes a file path, not a shipped asset ({value})")
    from hwnas import assets

    try:
        assets.check_ref(str(value), meta["asset"])
    except HwnasError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_options(cls: type, data: Mapping[str, Any] | None, path: str, base: Path | None = None) -> Any:
    """Build the frozen options dataclass ``cls`` from a mapping, naming ``path`` in errors."""
    data = dict(data or {})
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{path}.{key}: option names are text, got {type(key).__name__} {key!r} "
                              "(a value without its 'name:'?)")
        if key not in fields:
            raise ConfigError(f"{path}.{key}: unknown option{_suggest(key, list(fields))}; "
                              f"options: {', '.join(fields) or 'none'}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        fpath = f"{path}.{name}"
        if name in data:
            value = _coerce(data[name], hints.get(name, Any), fpath, base)
            _check_limits(value, f.metadata, fpath)
            _check_asset(value, f.metadata, fpath)
            kwargs[name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            raise ConfigError(f"{fpath}: required option missing ({_type_name(hints.get(name, Any))})")
    try:
        obj = cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{path}.{exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    check = getattr(obj, "check", None)
    if callable(check):
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(f"{path}.{exc}") from None
    return obj


def options_to_dict(options: Any) -> dict[str, Any]:
    if options is None or not dataclasses.is_dataclass(options):
        return {}
    out = {}
    for f in dataclasses.fields(options):
        v = getattr(options, f.name)
        if isinstance(v, Path):
            v = str(v)
        elif dataclasses.is_dataclass(v):
            v = options_to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
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
