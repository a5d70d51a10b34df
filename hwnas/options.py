"""Typed options: a component's frozen ``Options`` dataclass built from a YAML mapping.

Split from :mod:`hwnas.config` (which reads whole run configs) so that the machinery every
option class shares — ``opt()`` fields with limits, coercion to the annotated type, limit
and asset checks, one-line errors that start with the YAML path — lives in one small module.
Field metadata: ``min``/``max`` (inclusive), ``gt``/``lt`` (exclusive), ``choices``, ``odd``
(integers), ``unique`` (lists), ``asset`` (the kind of shipped ``asset:NAME`` a path option
accepts) and ``help`` (used by ``hwnas gen-config``).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Union, get_args, get_origin, get_type_hints

from hwnas.errors import ConfigError, HwnasError
from hwnas.inputs import short


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


def suggest(name: str, known: list[str]) -> str:
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
                              + (suggest(str(value), [str(a) for a in get_args(tp)])))
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
                              + suggest(str(v), [str(c) for c in meta["choices"]]))


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
            raise ConfigError(f"{path}.{key}: unknown option{suggest(key, list(fields))}; "
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


__all__ = ["NoOptions", "opt", "options_to_dict", "parse_options", "suggest"]
