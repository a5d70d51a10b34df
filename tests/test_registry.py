from __future__ import annotations

import pytest

from hwnas import registry
from hwnas.errors import RegistryError


def test_register_build_list_and_duplicates():
    @registry.register("controller", "_toy")
    class Toy:
        """A toy controller."""

        def __init__(self, x: int = 1) -> None:
            self.x = x

    try:
        assert registry.build("controller", "_toy", x=5).x == 5
        names = [e.name for e in registry.list("controller", "_to*")]
        assert names == ["_toy"]
        assert registry.list("controller", "_toy")[0].summary == "A toy controller."
        with pytest.raises(RegistryError, match="already registered"):
            registry.register("controller", "_toy")(type("Other", (), {}))
        # re-registering the same object is harmless (module reloads)
        registry.register("controller", "_toy")(Toy)
    finally:
        registry.unregister("controller", "_toy")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(RegistryError, match=r"unknown search_space 'nb210'.*did you mean 'nb201'"):
        registry.get("search_space", "nb210")


def test_unknown_role():
    with pytest.raises(RegistryError, match="unknown role"):
        registry.get("controllr", "x")


def test_plugins_come_from_entry_points(monkeypatch):
    import importlib.metadata as md

    loaded = []

    class EP:
        name = "demo"

        def load(self):
            loaded.append(True)
            registry.register("objective", "_plugin_obj")(type("PluginObj", (), {"__doc__": "from a plugin"}))

    monkeypatch.setattr(md, "entry_points", lambda group=None: [EP()] if group == "hwnas.plugins" else [])
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    try:
        assert registry.get("objective", "_plugin_obj").__doc__ == "from a plugin"
        assert loaded == [True]
    finally:
        registry.unregister("objective", "_plugin_obj")
