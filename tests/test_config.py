from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hwnas import registry
from hwnas.config import load_config, opt, parse_config
from hwnas.errors import ConfigError


@pytest.fixture
def path_component():
    @registry.register("dataset", "_test_files")
    class _Files:
        """Test-only component with a path option."""

        @dataclass(frozen=True)
        class Options:
            root: Path = opt(Path("data"), help="folder")
            batch: int = opt(8, gt=0)
            ratio: float = opt(0.5, min=0, max=1)
            mode: str = opt("a", choices=("a", "b"))
            low: int = opt(0)
            high: int = opt(1)

            def check(self) -> None:
                if self.low >= self.high:
                    raise ConfigError(f"low: must be < high ({self.high}), got {self.low}")

        def __init__(self, options):
            self.options = options

    yield _Files
    registry.unregister("dataset", "_test_files")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return p


def test_valid_config_builds_frozen_options(tmp_path, path_component):
    p = write(tmp_path, "seed: 3\ndataset: {type: _test_files, root: sub/dir, batch: 4}\n"
                        "search_space: {type: mbv2, resolution: 32, width: 0.5}\n")
    cfg = load_config(p)
    assert cfg.seed == 3
    opts = cfg["dataset"].options
    assert opts.batch == 4
    # relative paths resolve against the YAML file, not the working directory
    assert opts.root == (tmp_path / "sub" / "dir").resolve()
    with pytest.raises(Exception):
        opts.batch = 5  # frozen
    space = cfg["search_space"].build()
    assert space.options.resolution == 32 and space.name == "mbv2"


def test_unknown_key_did_you_mean(tmp_path):
    p = write(tmp_path, "search_space: {type: mbv2, resolutoin: 32}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "search_space.resolutoin: unknown option" in msg and "did you mean 'resolution'" in msg
    assert str(p) in msg and "\n" not in msg


def test_wrong_type_names_path():
    with pytest.raises(ConfigError, match=r"^search_space\.resolution: expected an integer, got 'big'$"):
        parse_config({"search_space": {"type": "mbv2", "resolution": "big"}})
    with pytest.raises(ConfigError, match=r"^search_space\.depths\[1\]: expected an integer"):
        parse_config({"search_space": {"type": "mbv2", "depths": [2, "x"]}})


def test_out_of_range_names_path(path_component):
    with pytest.raises(ConfigError, match=r"^dataset\.batch: must be > 0, got -3$"):
        parse_config({"dataset": {"type": "_test_files", "batch": -3}})
    with pytest.raises(ConfigError, match=r"^dataset\.ratio: must be <= 1, got 2"):
        parse_config({"dataset": {"type": "_test_files", "ratio": 2}})
    with pytest.raises(ConfigError, match=r"^dataset\.mode: expected one of 'a', 'b', got 'c'"):
        parse_config({"dataset": {"type": "_test_files", "mode": "c"}})


def test_cross_field_rule_names_path(path_component):
    with pytest.raises(ConfigError, match=r"^dataset\.low: must be < high"):
        parse_config({"dataset": {"type": "_test_files", "low": 3, "high": 2}})


def test_unknown_component_type_suggests():
    with pytest.raises(ConfigError) as e:
        parse_config({"search_space": {"type": "mbv4"}})
    assert str(e.value).startswith("search_space.type: unknown search_space 'mbv4'")
    assert "did you mean" in str(e.value) and "mbv2" in str(e.value)


def test_unknown_section_and_missing_type():
    with pytest.raises(ConfigError, match=r"^controler: unknown section \(did you mean 'controller'\?\)"):
        parse_config({"controler": {"type": "random"}})
    with pytest.raises(ConfigError, match=r"^search_space\.type: required"):
        parse_config({"search_space": {"resolution": 3}})


def test_yaml_syntax_error_names_line(tmp_path):
    p = write(tmp_path, "seed: 1\nsearch_space: {type: mbv2\n  bad: [\n")
    with pytest.raises(ConfigError, match=r"run\.yaml:\d+: not valid YAML"):
        load_config(p)


def test_safe_load_refuses_python_tags(tmp_path):
    p = write(tmp_path, "seed: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_run_section_is_typed(tmp_path: Path) -> None:
    """``run:`` is validated when the file is read, like any section: unknown keys with a
    hint, wrong values with their YAML path, relative paths against the YAML file."""
    cfg = load_config(write(tmp_path, "run: {device: cpu, amp: bf16, dir: out/x, train: {epochs: 3, lr: 0.1}}\n"))
    assert (cfg.run.device, cfg.run.amp, cfg.run.train.epochs, cfg.run.train.lr) == ("cpu", "bf16", 3, 0.1)
    assert cfg.run.dir == (tmp_path / "out" / "x").resolve()
    assert cfg.run.train.batch_size == 64  # the recipe's default
    assert parse_config({"run": cfg.to_dict()["run"]}).run == cfg.run  # round trip (Ray tasks re-parse it)
    assert "run" not in parse_config({}).to_dict()
    for text, expected in [
        ("run: {trian: {epochs: 3}}\n", "run.trian: unknown option (did you mean 'train'?)"),
        ("run: {train: {epochs: 0}}\n", "run.train.epochs: must be >= 1, got 0"),
        ("run: {train: {epoch: 3}}\n", "run.train.epoch: unknown option (did you mean 'epochs'?)"),
        ("run: {device: gpu}\n", "run.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
        ("run: {amp: fp8}\n", "run.amp: expected one of 'off', 'bf16', 'fp16', got 'fp8'"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_config(write(tmp_path, text))
        assert expected in str(err.value), (text, str(err.value))


def test_asset_references_only_where_an_option_takes_them(path_component):
    """``asset:NAME`` is checked at load (exists, right kind) only on options declared with
    ``opt(asset=KIND)``, and kept as written for the cost-source factory to resolve; a plain
    path option refuses it in one line."""
    with pytest.raises(ConfigError, match=r"^dataset\.root: takes a file path, not a shipped asset"):
        parse_config({"dataset": {"type": "_test_files", "root": "asset:nb201-pixel3"}})
    objective = {"type": "hardware", "model": "asset:nb201-pixel3"}
    cfg = parse_config({"search_space": {"type": "nb201"}, "objective": objective})
    assert str(cfg["objective"].options.model) == "asset:nb201-pixel3"
    with pytest.raises(ConfigError, match=r"^objective\.table: asset nb201-pixel3 is a cost_model, not a table"):
        parse_config({"objective": {"type": "hardware", "table": "asset:nb201-pixel3", "column": "x_ms"}})
    with pytest.raises(ConfigError, match=r"^objective\.model: unknown asset 'nb201-pixle3'"):
        parse_config({"objective": {"type": "hardware", "model": "asset:nb201-pixle3"}})
