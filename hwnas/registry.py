"""Register, build and list components by role and name.

Registration is explicit (``@register("controller", "evolution")``); built-in modules
are imported lazily the first time a role is used, and third-party components come in
through the ``hwnas.plugins`` entry-point group. Nothing is discovered by scanning
folders, so importing hwnas never runs a user's code by accident.
"""
from __future__ import annotations

import builtins
import difflib
import fnmatch
import importlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from hwnas.errors import RegistryError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Roles and the built-in modules that register their implementations.
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "op": ("hwnas.nn.builders", "hwnas.nn.cell_ops", "hwnas.nn.graph_ops"),
    "estimator": ("hwnas.profilers.estimators",),
    "backend": ("hwnas.profilers.backends",),
    "ingest_format": ("hwnas.profilers.ingest",),
    "power_format": ("hwnas.profilers.ingest.power",),
    "featurizer": ("hwnas.cost_models",),
    "cost_model": ("hwnas.cost_models",),
    "cost_source": ("hwnas.cost_models.source_tables", "hwnas.cost_models.source_models"),
    "search_space": ("hwnas.search.spaces",),
    "dataset": ("hwnas.search.datasets",),
    "controller": ("hwnas.search.controllers",),
    "weights_manager": ("hwnas.search.weights",),
    "evaluator": ("hwnas.search.evaluators",),
    "objective": ("hwnas.search.objectives",),
    "trainer": ("hwnas.search.trainers",),
    "zoo": ("hwnas.zoo",),
}

ROLES: tuple[str, ...] = tuple(BUILTIN_MODULES)


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    role: str
    name: str
    obj: Any
    module: str

    @property
    def summary(self) -> str:
        doc = (getattr(self.obj, "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else ""


_REGISTRY: dict[str, dict[str, Entry]] = {role: {} for role in ROLES}
_LOADED: set[str] = set()
_PLUGINS_LOADED = False


def _check_role(role: str) -> None:
    if role not in _REGISTRY:
        raise RegistryError(f"unknown role {role!r}{_suggest(role, _REGISTRY)}; roles: {', '.join(ROLES)}")


def _suggest(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, builtins.list(candidates), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def register(role: str, name: str) -> Callable[[T], T]:
    """Class/function decorator: register ``obj`` as ``name`` for ``role``.

    A second registration of the same name raises, so two plugins cannot silently
    shadow each other.
    """
    _check_role(role)

    def deco(obj: T) -> T:
        existing = _REGISTRY[role].get(name)
        if existing is not None and existing.obj is not obj:
            raise RegistryError(
                f"{role} {name!r} is already registered by {existing.module}; pick another name"
            )
        _REGISTRY[role][name] = Entry(role, name, obj, getattr(obj, "__module__", "?"))
        try:
            setattr(obj, "registry_name", name)
        except (AttributeError, TypeError):  # pragma: no cover - builtins
            pass
        return obj

    return deco


def _load_role(role: str) -> None:
    for mod in BUILTIN_MODULES.get(role, ()):
        if mod in _LOADED:
            continue
        _LOADED.add(mod)
        importlib.import_module(mod)  # a broken built-in module is a bug: let it fail loudly
    _load_plugins()


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="hwnas.plugins"):
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not break hwnas
            log.warning("plugin %s failed to load: %s", ep.name, exc)


def get(role: str, name: str) -> Any:
    """Return the registered object; an unknown name raises with close matches."""
    _check_role(role)
    _load_role(role)
    try:
        return _REGISTRY[role][name].obj
    except KeyError:
        known = sorted(_REGISTRY[role])
        raise RegistryError(
            f"unknown {role} {name!r}{_suggest(name, known)}; known: {', '.join(known) or 'none'}"
        ) from None


def build(role: str, name: str, **options: Any) -> Any:
    """Instantiate the component ``name`` of ``role`` with keyword options."""
    return get(role, name)(**options)


def list(role: str | None = None, pattern: str | None = None) -> builtins.list[Entry]:  # noqa: A001
    """Registered entries, optionally for one role and names matching a glob pattern."""
    roles = [role] if role else builtins.list(ROLES)
    out: builtins.list[Entry] = []
    for r in roles:
        _check_role(r)
        _load_role(r)
        for name in sorted(_REGISTRY[r]):
            if pattern and not fnmatch.fnmatch(name, pattern) and pattern not in name:
                continue
            out.append(_REGISTRY[r][name])
    return out


def unregister(role: str, name: str) -> None:
    """Remove an entry (tests and plugin reloads)."""
    _check_role(role)
    _REGISTRY[role].pop(name, None)
