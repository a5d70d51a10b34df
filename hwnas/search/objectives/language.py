"""Language objective (``language``): perplexity of a language-model candidate; the recipe of its final training.

Perplexity is ``exp`` of the mean cross-entropy (nats per token) over a split read in
fixed ``bptt`` windows with the hidden state carried from window to window (as AWD-LSTM
and DARTS-RNN evaluate), on ``batch_size`` rows. The reward is ``-ln(perplexity)``,
minus that mean cross-entropy: strictly decreasing in perplexity, so every controller
prefers lower perplexity, and on the scale of a loss (a cell twice as perplexing loses
0.69), which keeps RL baselines and evolution's comparisons meaningful where ``1/ppl``
would squash every difference between poor cells to nearly zero.

``final`` is the training recipe of the derived cell's language model
(:class:`~hwnas.search.language.recipe.LMRecipe`: sizes, dropouts, weight tying, SGD
with clipping and the NT-ASGD switch); :func:`hwnas.search.language.train.train_lm`
follows it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.datasets.base import Dataset
from hwnas.search.language.recipe import LMRecipe
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout


@register("objective", "language")
class LanguageObjective(Objective):
    """Perplexity of each language-model candidate on a split (reward: -ln perplexity)."""

    perf_names = ("perplexity",)

    @dataclass(frozen=True)
    class Options:
        split: Literal["train", "valid", "test"] = opt("valid", help="split the candidates are scored on")
        batch_size: int = opt(10, min=1, help="rows the split is read in (AWD-LSTM evaluates on 10)")
        bptt: int = opt(35, min=2, help="window length; the hidden state is carried across windows")
        max_windows: int = opt(0, min=0, help="score on the first N windows only (0 = the whole split)")
        final: LMRecipe = opt(LMRecipe(), help="training recipe of the derived cell's language model")

    def __init__(self, options: "LanguageObjective.Options | None" = None, *, dataset: Dataset | None = None,
                 **_: Any) -> None:
        self.options = options or LanguageObjective.Options()
        self.dataset = dataset

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        from hwnas.search.language.train import evaluate_lm

        corpus = getattr(self.dataset.prepare(), "corpus", None) if self.dataset is not None else None
        if corpus is None:
            raise ConfigError("dataset: the language objective needs a text dataset (type: ptb)")
        cands = list(candidates) if candidates is not None else [r.candidate for r in rollouts]
        if any(c is None or not callable(getattr(c, "step", None)) for c in cands):
            raise ConfigError("weights_manager: the language objective needs language-model candidates "
                              "(weights_manager.type: rnn_supernet)")
        o = self.options
        return [{"perplexity": math.exp(evaluate_lm(c, corpus.ids[o.split], o.batch_size, o.bptt, o.max_windows))}
                for c in cands]

    def reward(self, perfs: Mapping[str, float]) -> float:
        return -math.log(float(perfs["perplexity"]))

    def directions(self) -> dict[str, str]:
        return {"perplexity": "min"}
