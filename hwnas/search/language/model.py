"""The recurrent language model around a searched cell, for search (shared, mixed) and final training.

One module serves three uses, so the search scores exactly the network it later trains:

* :class:`RnnCell` holds ``W0`` and one ``W_i`` per node (DARTS-RNN shares ``W_i`` over
  the inputs a node may read) and runs a *plan*: a discrete genotype (one activation on
  one input per node: ENAS sharing, the final network), or architecture weights (every
  edge a weighted sum of its activations: DARTS; a one-hot hard index per edge: GDAS);
* :class:`LanguageModel` adds the embedding, the decoder (optionally tied to the
  embedding, Press & Wolf 2017) and the regularisers of the AWD-LSTM recipe (Merity et
  al., 2018) that DARTS-RNN trains with: embedding dropout (whole words), variational
  ("locked") dropout on the input, the hidden state inside the cell and the output, and
  DropConnect on the recurrent weights (one mask per window);
* :meth:`LanguageModel.step` carries the hidden state across windows, the stateless
  ``forward(x)`` starts each batch from zeros (what the engine's loops call).

Logits come out as ``(batch * time, vocab)`` in the batch-major order of the targets the
text datasets serve, so cross-entropy, accuracy and the training core apply unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

ACT_FNS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda t: t}
INIT_RANGE = 0.04  # DARTS-RNN's uniform init of the cell weights


@dataclass(frozen=True)
class Dropouts:
    """Regularisation of the model (AWD-LSTM / DARTS-RNN names in brackets)."""

    embedding: float = 0.0  # dropoute: drop whole words of the embedding matrix
    input: float = 0.0  # dropouti: locked dropout on the embedded input
    x: float = 0.0  # dropoutx: locked dropout on x_t inside the cell
    hidden: float = 0.0  # dropouth: locked dropout on the states inside the cell
    output: float = 0.0  # dropout: locked dropout on the cell's outputs
    weight: float = 0.0  # wdrop: DropConnect on the recurrent (hidden-to-hidden) weights


def locked_mask(shape: Sequence[int], p: float, like: torch.Tensor) -> torch.Tensor | None:
    """One Bernoulli mask for every time step (variational dropout), scaled by 1/(1-p)."""
    if p <= 0:
        return None
    return like.new_empty(shape).bernoulli_(1 - p) / (1 - p)


class RnnCell(nn.Module):
    """The cell's weights; :meth:`forward` unrolls it over a window under a plan."""

    def __init__(self, ninp: int, nhid: int, nodes: int, acts: Sequence[str], drop: Dropouts) -> None:
        super().__init__()
        self.ninp, self.nhid, self.nodes, self.acts, self.drop = ninp, nhid, nodes, tuple(acts), drop
        self.w0 = nn.Parameter(torch.empty(ninp + nhid, 2 * nhid).uniform_(-INIT_RANGE, INIT_RANGE))
        self.ws = nn.ParameterList(nn.Parameter(torch.empty(nhid, 2 * nhid).uniform_(-INIT_RANGE, INIT_RANGE))
                                   for _ in range(nodes))
        self.rows = {(i, j): r for r, (i, j) in enumerate((i, j) for i in range(nodes) for j in range(i + 1))}

    def _weights(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Weights of this window: DropConnect on the recurrent parts in training."""
        p = self.drop.weight if self.training else 0.0
        if p <= 0:
            return self.w0, list(self.ws)
        w0 = torch.cat([self.w0[:self.ninp], F.dropout(self.w0[self.ninp:], p)], 0)
        return w0, [F.dropout(w, p) for w in self.ws]

    def forward(self, x: torch.Tensor, h: torch.Tensor, plan: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: time x batch x ninp; ``h``: batch x nhid. Returns outputs (time x batch x
        nhid) and the last state."""
        w0, ws = self._weights()
        train = self.training
        x_mask = locked_mask((x.size(1), self.ninp), self.drop.x, x) if train else None
        h_mask = locked_mask((x.size(1), self.nhid), self.drop.hidden, x) if train else None
        outs = []
        for t in range(x.size(0)):
            h = self._step(x[t] if x_mask is None else x[t] * x_mask, h, h_mask, w0, ws, plan)
            outs.append(h)
        return torch.stack(outs), h

    def _step(self, x: torch.Tensor, h: torch.Tensor, h_mask: torch.Tensor | None, w0: torch.Tensor,
              ws: list[torch.Tensor], plan: Any) -> torch.Tensor:
        hm = h if h_mask is None else h * h_mask
        c0, h0 = torch.cat([x, hm], 1).mm(w0).split(self.nhid, 1)
        s0 = h + torch.sigmoid(c0) * (torch.tanh(h0) - h)
        states = [s0]
        genotype = getattr(plan, "genotype", None)
        for i in range(self.nodes):
            if genotype is not None:
                act, j = genotype[i]
                states.append(self._highway(states[j], h_mask, ws[i], act))
            else:
                states.append(self._mixed(i, states, h_mask, ws[i], plan))
        return torch.stack(states[1:]).mean(0)

    def _highway(self, s: torch.Tensor, h_mask: torch.Tensor | None, w: torch.Tensor, act: str) -> torch.Tensor:
        c, h = (s if h_mask is None else s * h_mask).mm(w).split(self.nhid, 1)
        return s + torch.sigmoid(c) * (ACT_FNS[act](h) - s)

    def _mixed(self, i: int, states: list[torch.Tensor], h_mask: torch.Tensor | None, w: torch.Tensor,
               plan: Any) -> torch.Tensor:
        """Node ``i`` mixed over its inputs and activations, all inputs in one matmul:
        per input ``j`` the highway outputs weighted by its row of architecture weights
        (DARTS), or only the row's hard choice (GDAS), divided by the total weight: a
        weighted *mean*, not a sum, since a sum grows the state ``i + 1``-fold per node and,
        through ``h_t``, without bound over time (DARTS-RNN's search cell puts BatchNorm on
        the states for this). Softmax rows make it the mean over inputs; one-hot weights of
        a discrete cell (one row set) give exactly that cell's node."""
        weights, index = plan.weights["recurrent"], plan.index.get("recurrent") if plan.index else None
        r0 = self.rows[(i, 0)]
        s = torch.stack(states)  # inputs x batch x nhid
        c, h = (s if h_mask is None else s * h_mask).matmul(w).split(self.nhid, -1)
        c = torch.sigmoid(c)
        rw = weights[r0:r0 + len(states)]  # inputs x acts
        if index is not None:  # hard paths: only each row's chosen activation
            rw = rw * torch.nn.functional.one_hot(torch.as_tensor(index[r0:r0 + len(states)]),
                                                  len(self.acts)).to(rw.dtype)
        out = None
        for k, act in enumerate(self.acts):
            if index is not None and k not in index[r0:r0 + len(states)]:
                continue
            y = (rw[:, k].view(-1, 1, 1) * (s + c * (ACT_FNS[act](h) - s))).sum(0)
            out = y if out is None else out + y
        assert out is not None
        return out / rw.sum()


@dataclass
class Genotype:
    """A discrete plan: per node, (activation, input state)."""

    genotype: list[tuple[str, int]]


class LanguageModel(nn.Module):
    """Embedding, a searched cell, (tied) decoder; see the module docstring."""

    def __init__(self, vocab: int, ninp: int, nhid: int, nodes: int, acts: Sequence[str], drop: Dropouts,
                 tie_weights: bool = True) -> None:
        super().__init__()
        self.vocab, self.ninp, self.nhid, self.drop = vocab, ninp, nhid, drop
        self.encoder = nn.Embedding(vocab, ninp)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        self.cell = RnnCell(ninp, nhid, nodes, acts, drop)
        self.decoder = nn.Linear(nhid, vocab)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.encoder.weight  # needs ninp == nhid (checked by the callers' options)
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.encoder.weight.new_zeros(batch, self.nhid)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        w = self.encoder.weight
        if self.training and self.drop.embedding > 0:
            keep = w.new_empty(w.size(0), 1).bernoulli_(1 - self.drop.embedding) / (1 - self.drop.embedding)
            w = w * keep
        return F.embedding(x, w)

    def step(self, x: torch.Tensor, hidden: torch.Tensor | None, plan: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(batch * time, vocab)`` of ``x`` (batch x time token ids) from ``hidden``
        (None: zeros), and the state after the last token."""
        h = self.init_hidden(x.size(0)) if hidden is None else hidden
        emb = self._embed(x).transpose(0, 1)  # time x batch x ninp
        if self.training:
            m = locked_mask((emb.size(1), self.ninp), self.drop.input, emb)
            emb = emb if m is None else emb * m
        out, h = self.cell(emb, h, plan)
        if self.training:
            m = locked_mask((out.size(1), self.nhid), self.drop.output, out)
            out = out if m is None else out * m
        logits = self.decoder(out.transpose(0, 1).reshape(-1, self.nhid))
        return logits, h

    def forward(self, x: torch.Tensor, plan: Any) -> torch.Tensor:
        return self.step(x, None, plan)[0]


class PlannedLM(nn.Module):
    """A language model under one fixed plan: a searched candidate, or the final network.
    ``forward(x)`` is stateless; :meth:`step` carries the hidden state."""

    def __init__(self, lm: LanguageModel, plan: Any, arch: Any = None) -> None:
        super().__init__()
        self.lm, self.plan, self.arch = lm, plan, arch

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.lm.init_hidden(batch)

    def step(self, x: torch.Tensor, hidden: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lm.step(x, hidden, self.plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm(x, self.plan)
