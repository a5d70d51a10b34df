"""`hwnas gen-config` writes, for every registered component, a config that loads and
builds (or, for datasets that read the user's files, fails with one line naming them)."""
from __future__ import annotations

from pathlib import Path

import pytest

from hwnas import registry
from hwnas.config import SECTIONS
from hwnas.errors import ConfigError
from hwnas.search.build import build_components, load_run_config
from hwnas.search.genconfig import write_config

CASES = [(section, e.name) for section, role in SECTIONS.items() for e in registry.list(role)]


@pytest.mark.parametrize("section,name", CASES)
def test_generated_config_builds(tmp_path: Path, section: str, name: str) -> None:
    path = tmp_path / "c.yaml"
    write_config({section: name}, out=path)
    cfg = load_run_config(path)
    assert cfg[section].type == name
    if section == "dataset" and "root" in {f for f in getattr(cfg["dataset"].options, "__dataclass_fields__", {})}:
        with pytest.raises(ConfigError, match=r"dataset\.root: .*(not found|is not a folder)"):
            build_components(cfg)
        return
    comps = build_components(cfg)
    assert comps.space.name == cfg["search_space"].type


def test_supernet_choice_brings_its_space(tmp_path: Path) -> None:
    import yaml

    cfg = yaml.safe_load(write_config({"evaluator": "mepa", "search_space": "nb201"}))
    assert cfg["weights_manager"]["type"] == "nb201_supernet"
    cfg = yaml.safe_load(write_config({"weights_manager": "nb201_supernet"}))
    assert cfg["search_space"]["type"] == "nb201"
