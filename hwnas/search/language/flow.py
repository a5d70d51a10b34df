"""Derive -> train -> test for a searched recurrent cell (``hwnas train`` / ``test`` on rnn_cell configs).

:func:`train_and_test` reads the run config, builds the final language model of an
architecture at the sizes of the ``language`` objective's ``final`` recipe, trains it
with :func:`~hwnas.search.language.train.train_lm` (resumable in ``out_dir``), and
reports validation and test perplexity of the best weights beside the add-one-smoothed
unigram model's on the same vocabulary and splits, plus the out-of-vocabulary counts.
:func:`train_files` / :func:`test_files` are what ``hwnas train`` / ``hwnas test`` call
for a config whose space is ``rnn_cell`` (the image recipe of ``run.train`` does not apply).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from hwnas.config import RunConfig
from hwnas.errors import ConfigError
from hwnas.search.build import build_component, load_run_config
from hwnas.search.language.corpus import Corpus
from hwnas.search.language.model import Genotype, LanguageModel, PlannedLM
from hwnas.search.language.recipe import LMRecipe
from hwnas.search.language.train import CHECKPOINT, evaluate_lm, load_best, load_checkpoint_weights, train_lm
from hwnas.search.spaces.base import Arch
from hwnas.search.spaces.rnn_cell import RnnCellSpace


def is_language(cfg: RunConfig) -> bool:
    """Whether a run config describes a language-model search (an ``rnn_cell`` space)."""
    return "search_space" in cfg and cfg["search_space"].type == "rnn_cell"


def final_model(space: RnnCellSpace, arch: Arch, recipe: LMRecipe, seed: int = 0) -> PlannedLM:
    """A freshly initialised language model of ``arch`` at the recipe's sizes and dropouts."""
    o = space.options
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = LanguageModel(o.num_classes, recipe.emb, recipe.nhid, o.nodes, space.acts, recipe.dropouts(),
                           recipe.tie_weights)
    return PlannedLM(lm, Genotype(space.genotype(arch)), arch)


@dataclass
class Setup:
    """Everything the final training and the test of one cell need."""

    cfg: RunConfig
    space: RnnCellSpace
    recipe: LMRecipe
    corpus: Corpus
    arch: Arch
    model: PlannedLM


def setup(config: str | Path | RunConfig, arch: str, **recipe_overrides: Any) -> Setup:
    """Config, space, recipe (with overrides), corpus and a fresh model of ``arch``."""
    cfg = config if isinstance(config, RunConfig) else load_run_config(config)
    where = cfg.source or config
    space = cfg["search_space"].build()
    if not isinstance(space, RnnCellSpace):
        raise ConfigError(f"{where}: search_space.type: expected rnn_cell, got {space.name!r}")
    if "objective" not in cfg or cfg["objective"].type != "language":
        raise ConfigError(f"{where}: objective.type: expected language (its final section is the recipe)")
    recipe: LMRecipe = replace(cfg["objective"].build().options.final, **recipe_overrides)
    recipe.check()
    corpus = build_component(cfg["dataset"], seed=cfg.seed).prepare().corpus
    if corpus is None:
        raise ConfigError(f"{where}: dataset.type: expected a text dataset (ptb)")
    if len(corpus.vocab) != space.options.num_classes:
        raise ConfigError(f"{where}: search_space.num_classes: is {space.options.num_classes} but the corpus has "
                          f"{len(corpus.vocab)} words")
    parsed = space.from_str(arch)
    return Setup(cfg, space, recipe, corpus, parsed, final_model(space, parsed, recipe, cfg.seed))


def test_report(s: Setup) -> dict[str, Any]:
    """Validation and test perplexity of ``s.model`` beside the add-one unigram model's."""
    res: dict[str, Any] = {"space": s.space.name, "arch": s.space.to_str(s.arch),
                           "darts_genotype": s.space.to_darts_str(s.arch), "network_hash": s.space.to_network(s.arch).hash,
                           "parameters": sum(p.numel() for p in s.model.parameters())}
    for split in ("valid", "test"):
        loss = evaluate_lm(s.model, s.corpus.ids[split], s.recipe.eval_batch_size, s.recipe.bptt)
        res[f"{split}_loss"], res[f"{split}_ppl"] = loss, math.exp(loss)
        res[f"{split}_unigram_ppl"] = s.corpus.unigram_perplexity(split, 1.0)
        res[f"{split}_oov_tokens"] = s.corpus.oov[split]
    return res


def train_and_test(config: str | Path, arch: str, out_dir: str | Path, *,
                   on_epoch: Callable[[dict[str, float]], None] | None = None, stop_after: int | None = None,
                   **recipe_overrides: Any) -> dict[str, Any]:
    """Train the cell ``arch`` (a genotype string) by the config's recipe, then test it."""
    s = setup(config, arch, **recipe_overrides)
    run = train_lm(s.model, s.corpus, s.recipe, Path(out_dir), arch=s.space.to_str(s.arch), seed=s.cfg.seed,
                   on_epoch=on_epoch, stop_after=stop_after)
    load_best(run)
    res = {**test_report(s), "epochs": run.epoch, "asgd_switched": run.asgd, "history": run.history}
    (Path(out_dir) / "summary.json").write_text(json.dumps(res, indent=2))
    return res


def arch_text(cfg: RunConfig, arch_file: Any) -> str:
    """The genotype string of an architecture file (``hwnas derive``'s ``best.yaml``)."""
    space = cfg["search_space"].build()
    return space.to_str(arch_file.resolve(space))


def train_files(cfg: RunConfig, arch: Any, out_dir: Path, overrides: Mapping[str, Any], *, resume: bool = False,
                from_supernet: Any = None, stop_after: int | None = None, nproc: int = 1,
                on_epoch: Callable[[dict[str, Any]], None] | None = None, **_: Any) -> dict[str, Any]:
    """``hwnas train`` for an rnn_cell config: ``arch`` is the ArchFile; the recipe is
    ``objective.final`` (``--epochs``, ``--batch-size``, ``--lr``, ``--weight-decay`` override it)."""
    where = cfg.source or "config"
    if from_supernet or nproc > 1:
        raise ConfigError(f"{where}: language models train from scratch in one process (no --from-supernet, --nproc)")
    if overrides.get("label_smoothing") is not None:
        raise ConfigError("--label-smoothing: language models train on plain cross-entropy")
    if (out_dir / CHECKPOINT).exists() and not resume:
        raise ConfigError(f"{out_dir / CHECKPOINT}: a checkpoint exists; resume it or choose another output folder")
    rec = {k: v for k, v in overrides.items() if v is not None and k in ("epochs", "batch_size", "lr", "weight_decay")}
    epochs = rec.get("epochs")
    res = train_and_test(cfg, arch_text(cfg, arch), out_dir, stop_after=stop_after, **rec,
                         on_epoch=None if on_epoch is None else lambda r: on_epoch({**r, "epochs_total": epochs}))
    return {**res, "epochs_done": res["epochs"], "epochs": res["epochs"] if epochs is None else epochs,
            "checkpoint": str(out_dir / CHECKPOINT), "rank": 0}


def test_files(cfg: RunConfig, arch: Any, checkpoint: str | Path, *, measure: Any = None, cost_model: Any = None,
               **_: Any) -> dict[str, Any]:
    """``hwnas test`` for an rnn_cell config: perplexities of the checkpoint's best weights.
    Latency is refused in one line: the profilers have no builders for the ``rnn_*``,
    ``embedding`` and ``lm_decoder`` primitives yet."""
    if measure is not None or cost_model is not None:
        raise ConfigError("--profile / --cost-model: rnn_cell networks cannot be profiled or priced yet (no "
                          "builders for their rnn_* / embedding / lm_decoder primitives)")
    s = setup(cfg, arch_text(cfg, arch))
    load_checkpoint_weights(s.model, Path(checkpoint), s.space.to_str(s.arch))
    res = test_report(s)
    res["test_perplexity"] = res["test_ppl"]
    return res
