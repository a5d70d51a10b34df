"""Miniatures of the language -cpu configs (search -> derive -> train -> test, resumable) and
the controllers the issue names, on the rnn_cell space."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
import yaml

from hwnas.errors import ConfigError
from hwnas.search import final
from hwnas.search.api import run_search
from hwnas.search.language.corpus import Corpus
from hwnas.search.language.flow import train_and_test
from hwnas.testing._language import write_corpus

ROOT = Path(__file__).resolve().parents[2]
SHAKESPEARE = ROOT / "tests" / "data" / "shakespeare_ptb"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small recurrent matmuls crawl when threads contend on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def mini(name: str, tmp: Path, **sections: dict[str, Any]) -> Path:
    """The shipped config ``name`` on the first 3,000 training tokens at 32 units, sections updated."""
    cfg = yaml.safe_load((ROOT / "configs" / name).read_text())
    cfg["dataset"].update(root=str(SHAKESPEARE), max_train_tokens=3000)
    cfg["search_space"].update(emb=32, nhid=32)
    cfg["objective"]["final"].update(epochs=1, max_windows=4, emb=32, nhid=32)
    for key, opts in sections.items():
        cfg[key].update(opts)
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def check_flow(config: Path, tmp: Path) -> None:
    """search -> derive -> ``hwnas train`` -> ``hwnas test`` (the library calls behind them), resume."""
    summary = run_search(config, run_dir=tmp / "search", restart=True)
    arch = summary["best"]["arch_str"]
    assert arch.count("|") == 3  # a 4-node cell
    (tmp / "best.yaml").write_text(yaml.safe_dump([{"arch_str": arch, "space": "rnn_cell"}]))
    res = final.train_files(config, tmp / "best.yaml", out=tmp / "final", overrides={"epochs": None})
    assert res["arch"] == arch and res["epochs_done"] == 1 and res["test_oov_tokens"] == 0
    unigram = Corpus.load(SHAKESPEARE, max_tokens=3000).unigram_perplexity("test")  # same training tokens
    assert 1 < res["test_ppl"] < 1407 and res["test_unigram_ppl"] == pytest.approx(unigram)
    assert json.loads((tmp / "final" / "summary.json").read_text())["test_ppl"] == res["test_ppl"]
    tested = final.test_files(config, tmp / "best.yaml", tmp / "final" / "checkpoint.pt")
    assert tested["test_perplexity"] == pytest.approx(res["test_ppl"])  # the checkpoint's best weights
    with pytest.raises(ConfigError, match="cannot be profiled"):
        final.test_files(config, tmp / "best.yaml", tmp / "final" / "checkpoint.pt", cost_model="asset:x")
    with pytest.raises(ConfigError, match="a checkpoint exists"):
        final.train_files(config, tmp / "best.yaml", out=tmp / "final", overrides={})
    again = final.train_files(config, tmp / "best.yaml", out=tmp / "final", overrides={"epochs": 2}, resume=True)
    assert again["epochs_done"] == 2 and again["history"][0] == res["history"][0]  # one more epoch, resumed
    other = "tanh~0|tanh~0|tanh~0|tanh~0" if arch != "tanh~0|tanh~0|tanh~0|tanh~0" else "relu~0|relu~0|relu~0|relu~0"
    with pytest.raises(ConfigError, match="checkpoint holds cell"):
        train_and_test(config, other, tmp / "final")


def test_darts_rnn_cpu_miniature(tmp_path: Path) -> None:
    config = mini("darts-rnn-ptb-cpu.yaml", tmp_path, trainer={"epochs": 1, "steps_per_epoch": 2, "eval_batches": 1})
    check_flow(config, tmp_path)


def test_enas_rnn_cpu_miniature(tmp_path: Path) -> None:
    config = mini("enas-rnn-ptb-cpu.yaml", tmp_path, trainer={"steps": 2, "rollouts_per_step": 2},
                  evaluator={"steps": 2}, objective={"max_windows": 2})
    check_flow(config, tmp_path)


@pytest.mark.parametrize("controller,trainer", [
    ({"type": "gdas", "tau_max": 10.0, "tau_min": 1.0}, "differentiable"),
    ({"type": "evolution", "population": 4, "sample_size": 2}, "simple"),
    ({"type": "random"}, "simple"),
])
def test_other_controllers_search_rnn_cells(tmp_path: Path, controller: dict[str, Any], trainer: str) -> None:
    root = write_corpus(tmp_path / "corpus")
    cfg: dict[str, Any] = {
        "seed": 0, "dataset": {"type": "ptb", "root": str(root), "bptt": 6},
        "search_space": {"type": "rnn_cell", "nodes": 3, "num_classes": len(Corpus.load(root).vocab), "emb": 8,
                         "nhid": 8, "seq_len": 6},
        "controller": controller, "weights_manager": {"type": "rnn_supernet"},
        "objective": {"type": "language", "batch_size": 4, "bptt": 6, "max_windows": 3}}
    if trainer == "differentiable":
        cfg["trainer"] = {"type": "differentiable", "epochs": 2, "steps_per_epoch": 2, "batch_size": 8, "lr": 1.0,
                          "momentum": 0.0, "grad_clip": 0.25, "eval_batches": 1, "calib_batches": 0}
    else:
        cfg["evaluator"] = {"type": "mepa", "steps": 2, "batch_size": 8, "lr": 1.0, "momentum": 0.0,
                            "eval_batches": 1, "eval_batch_size": 8, "calib_batches": 0}
        cfg["trainer"] = {"type": "simple", "steps": 3, "rollouts_per_step": 2, "evaluator_updates": 1, "plot": False}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    summary = run_search(path, run_dir=tmp_path / "run", restart=True)
    best = summary["best"]
    assert best["arch_str"].count("|") == 2
    if trainer == "simple":  # scored by the language objective: reward -ln(perplexity)
        assert best["reward"] == pytest.approx(-math.log(best["perfs"]["perplexity"]))
        assert summary["rollouts"] == 6


def test_language_model_beats_the_unigram_model(tmp_path: Path) -> None:
    """Real learning on a corpus with a bigram tendency: test perplexity under the add-one unigram's."""
    root = write_corpus(tmp_path / "corpus", tokens=(3000, 400, 400))
    vocab = len(Corpus.load(root).vocab)
    cfg = {"dataset": {"type": "ptb", "root": str(root), "bptt": 10},
           "search_space": {"type": "rnn_cell", "nodes": 2, "num_classes": vocab, "emb": 24, "nhid": 24,
                            "seq_len": 10},
           "controller": {"type": "random"}, "objective": {"type": "language", "final": {
               "emb": 24, "nhid": 24, "epochs": 6, "batch_size": 8, "eval_batch_size": 4, "bptt": 10, "lr": 5.0,
               "dropout": 0.1, "dropout_h": 0.0, "dropout_x": 0.0, "dropout_i": 0.0, "dropout_e": 0.0}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = train_and_test(path, "tanh~0|relu~1", tmp_path / "final")
    assert res["test_ppl"] < 0.8 * res["test_unigram_ppl"], res


@pytest.mark.parametrize("name,nodes,units", [("darts-rnn-ptb.yaml", 8, 300), ("enas-rnn-ptb.yaml", 12, 1000)])
def test_paper_configs_validate(name: str, nodes: int, units: int) -> None:
    """The paper-scale configs load (PTB itself is not shipped: nothing is built from data here)."""
    from hwnas.search.build import load_run_config

    cfg = load_run_config(ROOT / "configs" / name)
    space = cfg["search_space"].build()
    assert (space.options.nodes, space.options.nhid, space.options.num_classes) == (nodes, units, 10000)
    recipe = cfg["objective"].build().options.final
    assert (recipe.nhid, recipe.lr, recipe.grad_clip, recipe.asgd, recipe.nonmono) == (850, 20.0, 0.25, True, 5)
    assert Path(cfg["dataset"].options.root) == ROOT / "data" / "ptb"  # relative to the YAML file
