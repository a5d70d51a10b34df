"""Shared weights for the ``rnn_cell`` space (weights manager ``rnn_supernet``).

One :class:`~hwnas.search.language.model.LanguageModel` holds the embedding, the
decoder and every node's weights; each architecture runs its own (activation, input)
per node on them, so ENAS-style discrete controllers (rl, evolution, random with the
``mepa`` evaluator) score many cells after training one network. Rollouts that carry
architecture weights (``darts``, ``gdas`` and the other differentiable controllers)
run the mixed cell, and their loss reaches the controller's logits
(``gives_gradients``), as DARTS-RNN's search model does.

The options are the search-time model and its regularisation (DARTS-RNN's search
defaults: 300 units, dropouts 0.75 / 0.25 / 0.75 / 0.2 / 0); the final network's come
from the ``language`` objective's ``final`` recipe.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.registry import register
from hwnas.search.language.model import Dropouts, Genotype, LanguageModel, PlannedLM
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace
from hwnas.search.spaces.differentiable import ParamGroup
from hwnas.search.spaces.rnn_cell import RnnCellSpace
from hwnas.search.weights.base import WeightsManager
from hwnas.search.weights.mixed import MixedPlan


@dataclass(frozen=True)
class SearchDropouts:
    """Dropout of the shared model during search (DARTS-RNN search defaults)."""

    dropout: float = opt(0.75, min=0.0, lt=1.0, help="locked dropout on the cell's outputs")
    dropout_h: float = opt(0.25, min=0.0, lt=1.0, help="locked dropout on the states inside the cell")
    dropout_x: float = opt(0.75, min=0.0, lt=1.0, help="locked dropout on the cell's input x_t")
    dropout_i: float = opt(0.2, min=0.0, lt=1.0, help="locked dropout on the embedded words")
    dropout_e: float = opt(0.0, min=0.0, lt=1.0, help="embedding dropout (whole words)")
    weight_drop: float = opt(0.0, min=0.0, lt=1.0, help="DropConnect on the recurrent weights")
    tie_weights: bool = opt(True, help="share the embedding and decoder matrices (needs emb == nhid)")

    def dropouts(self) -> Dropouts:
        return Dropouts(self.dropout_e, self.dropout_i, self.dropout_x, self.dropout_h, self.dropout, self.weight_drop)


def build_lm(space: RnnCellSpace, d: Dropouts, tie: bool, where: str = "weights_manager.tie_weights") -> LanguageModel:
    """The space's language model with dropouts ``d`` (tied weights need emb == nhid)."""
    o = space.options
    if tie and o.emb != o.nhid:
        raise ConfigError(f"{where}: tied weights need search_space.emb == search_space.nhid, got {o.emb} and {o.nhid}")
    return LanguageModel(o.num_classes, o.emb, o.nhid, o.nodes, space.acts, d, tie)


@register("weights_manager", "rnn_supernet")
class RnnSupernet(WeightsManager):
    """Shared language model for rnn cells: discrete cells (ENAS) or mixed ones (DARTS, GDAS)."""

    supernet_for = ("rnn_cell",)
    gives_gradients = True

    Options = SearchDropouts

    @classmethod
    def serves(cls, space_cls: type) -> bool:
        return issubclass(space_cls, RnnCellSpace)

    def __init__(self, options: SearchDropouts | None = None, *, space: SearchSpace, seed: int = 0,
                 **_: Any) -> None:
        self.check_space(type(space))
        self.options = o = options or SearchDropouts()
        self.space: RnnCellSpace = space  # type: ignore[assignment]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module: nn.Module = build_lm(self.space, o.dropouts(), o.tie_weights)

    def parameters(self) -> Any:
        return self.module.parameters()

    def param_groups(self) -> list[ParamGroup]:
        return self.space.param_groups()

    def config_of(self, arch: Arch) -> Genotype:
        return Genotype(self.space.genotype(arch))

    def assemble_candidate(self, rollout: Rollout) -> PlannedLM:
        aw = rollout.arch_weights
        arch = self.space.validate(rollout.arch)
        if aw is None:
            cand = PlannedLM(self.module, self.config_of(arch), arch)  # type: ignore[arg-type]
        else:
            if "recurrent" not in aw.weights:
                raise ConfigError("controller: its rollouts lack the 'recurrent' architecture weights this supernet "
                                  "mixes by (build the controller with this weights manager)")
            index = {k: v.tolist() for k, v in aw.index.items()} if aw.index is not None else None
            cand = PlannedLM(self.module, MixedPlan(dict(aw.weights), index), arch)  # type: ignore[arg-type]
        rollout.candidate = cand
        return cand

    def state_dict(self) -> dict[str, Any]:
        return dict(self.module.state_dict())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(dict(state))
