"""The final-training recipe of a language model (the ``language`` objective's ``final`` section).

Defaults are DARTS-RNN's final training on PTB (Liu et al., 2019, after AWD-LSTM): 850
units, tied weights, SGD at 20 with gradient clipping at 0.25, weight decay 8e-7, BPTT
35, batch 64, and the non-monotonically triggered switch to averaged SGD (NT-ASGD: once
the validation loss has not improved on the best of all but the last ``nonmono``
evaluations, training continues with ASGD and evaluates the averaged weights).
"""
from __future__ import annotations

from dataclasses import dataclass

from hwnas.config import opt
from hwnas.errors import ConfigError
from hwnas.search.language.model import Dropouts


@dataclass(frozen=True)
class LMRecipe:
    """How the derived cell's language model is trained from scratch (YAML: ``objective.final``)."""

    emb: int = opt(850, min=1, help="word-embedding size")
    nhid: int = opt(850, min=1, help="hidden-state size")
    tie_weights: bool = opt(True, help="share the embedding and decoder matrices (needs emb == nhid)")
    epochs: int = opt(8000, min=1, help="training epochs (DARTS: 8000 with early stopping by the ASGD switch)")
    batch_size: int = opt(64, min=1, help="rows of the batchified training split")
    eval_batch_size: int = opt(10, min=1, help="rows for validation and test (AWD-LSTM: 10)")
    bptt: int = opt(35, min=2, help="mean window length in training, the window in evaluation")
    lr: float = opt(20.0, gt=0, help="SGD (and ASGD) learning rate, scaled per window by its length / bptt")
    weight_decay: float = opt(8e-7, min=0.0, help="L2 weight decay")
    grad_clip: float = opt(0.25, min=0.0, help="gradient-norm clip (0 = off)")
    dropout: float = opt(0.75, min=0.0, lt=1.0, help="locked dropout on the cell's outputs")
    dropout_h: float = opt(0.25, min=0.0, lt=1.0, help="locked dropout on the states inside the cell")
    dropout_x: float = opt(0.75, min=0.0, lt=1.0, help="locked dropout on the cell's input x_t")
    dropout_i: float = opt(0.2, min=0.0, lt=1.0, help="locked dropout on the embedded words")
    dropout_e: float = opt(0.1, min=0.0, lt=1.0, help="embedding dropout (whole words)")
    weight_drop: float = opt(0.0, min=0.0, lt=1.0, help="DropConnect on the recurrent weights (AWD-LSTM: 0.5)")
    asgd: bool = opt(True, help="switch to averaged SGD when validation stops improving (NT-ASGD)")
    nonmono: int = opt(5, min=1, help="NT-ASGD: evaluations the validation loss may fail to improve on")
    max_windows: int = opt(0, min=0, help="training windows per epoch (0 = the whole split); short CPU runs")

    def check(self) -> None:
        if self.tie_weights and self.emb != self.nhid:
            raise ConfigError(f"tie_weights: tied weights need emb == nhid, got {self.emb} and {self.nhid}")

    def dropouts(self) -> Dropouts:
        return Dropouts(self.dropout_e, self.dropout_i, self.dropout_x, self.dropout_h, self.dropout, self.weight_drop)
