"""Derive -> train -> test for a searched recurrent cell (what ``hwnas train`` / ``test`` do for images).

:func:`train_and_test` reads the run config, builds the final language model of an
architecture at the sizes of the ``language`` objective's ``final`` recipe, trains it
with :func:`~hwnas.search.language.train.train_lm` (resumable in ``out_dir``), and
reports validation and test perplexity of the best weights beside the add-one-smoothed
unigram model's on the same vocabulary and splits, plus the out-of-vocabulary counts.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from hwnas.errors import ConfigError
from hwnas.search.build import build_component, load_run_config
from hwnas.search.language.model import Genotype, LanguageModel, PlannedLM
from hwnas.search.language.recipe import LMRecipe
from hwnas.search.language.train import evaluate_lm, load_best, train_lm
from hwnas.search.spaces.base import Arch
from hwnas.search.spaces.rnn_cell import RnnCellSpace


def final_model(space: RnnCellSpace, arch: Arch, recipe: LMRecipe, seed: int = 0) -> PlannedLM:
    """A freshly initialised language model of ``arch`` at the recipe's sizes and dropouts."""
    o = space.options
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = LanguageModel(o.num_classes, recipe.emb, recipe.nhid, o.nodes, space.acts, recipe.dropouts(),
                           recipe.tie_weights)
    return PlannedLM(lm, Genotype(space.genotype(arch)), arch)


def train_and_test(config: str | Path, arch: str, out_dir: str | Path, *,
                   on_epoch: Callable[[dict[str, float]], None] | None = None, **recipe_overrides: Any) -> dict[str, Any]:
    """Train the cell ``arch`` (a genotype string) by the config's recipe, then test it."""
    cfg = load_run_config(config)
    space = cfg["search_space"].build()
    if not isinstance(space, RnnCellSpace):
        raise ConfigError(f"{config}: search_space.type: expected rnn_cell, got {space.name!r}")
    if "objective" not in cfg or cfg["objective"].type != "language":
        raise ConfigError(f"{config}: objective.type: expected language (its final section is the recipe)")
    recipe: LMRecipe = replace(cfg["objective"].build().options.final, **recipe_overrides)
    dataset = build_component(cfg["dataset"], seed=cfg.seed).prepare()
    corpus = dataset.corpus
    if len(corpus.vocab) != space.options.num_classes:
        raise ConfigError(f"{config}: search_space.num_classes: is {space.options.num_classes} but the corpus has "
                          f"{len(corpus.vocab)} words")
    parsed = space.from_str(arch)
    model = final_model(space, parsed, recipe, cfg.seed)
    run = train_lm(model, corpus, recipe, Path(out_dir), arch=space.to_str(parsed), seed=cfg.seed, on_epoch=on_epoch)
    load_best(run)
    res: dict[str, Any] = {"arch": space.to_str(parsed), "darts_genotype": space.to_darts_str(parsed),
                           "epochs": run.epoch, "asgd_switched": run.asgd, "history": run.history,
                           "parameters": sum(p.numel() for p in model.parameters())}
    for split in ("valid", "test"):
        loss = evaluate_lm(model, corpus.ids[split], recipe.eval_batch_size, recipe.bptt)
        res[f"{split}_ppl"] = math.exp(loss)
        res[f"{split}_unigram_ppl"] = corpus.unigram_perplexity(split, 1.0)
        res[f"{split}_oov_tokens"] = corpus.oov[split]
    (Path(out_dir) / "summary.json").write_text(json.dumps(res, indent=2))
    return res
