"""Architecture weights: what a differentiable rollout carries to the supernet.

A differentiable controller keeps logits per :class:`~hwnas.search.spaces.differentiable.ParamGroup`
and turns them into :class:`ArchWeights` - a softmax (DARTS), a Gumbel-softmax sample
(SNAS, FBNet) or a hard one-hot sample with a straight-through gradient (GDAS, with the
sampled indices in ``index`` so the supernet runs only those ops). The weights stay in
the autograd graph of the logits, so a loss computed through a supernet and a
hardware objective sends gradients back to the controller.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from hwnas.search.spaces.differentiable import ParamGroup


@dataclass
class ArchWeights:
    """Per group, a (rows x choices) weight tensor; ``index``: per group the sampled
    choice of every row when the weights are hard one-hot (GDAS), else None."""

    weights: dict[str, torch.Tensor]
    index: dict[str, torch.Tensor] | None = None

    @property
    def hard(self) -> bool:
        return self.index is not None

    def detached(self) -> ArchWeights:
        """The same weights outside the graph (weight steps must not train the logits)."""
        return ArchWeights({k: v.detach() for k, v in self.weights.items()},
                           None if self.index is None else dict(self.index))

    def numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in self.weights.items()}


def mask_tensor(group: ParamGroup) -> torch.Tensor | None:
    """Boolean mask of a ragged group (None when every row has every choice)."""
    return None if group.mask is None else torch.as_tensor(group.mask_array())


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor | None, tau: float = 1.0) -> torch.Tensor:
    """Row-wise softmax of ``logits / tau`` over the allowed choices (others get 0)."""
    z = logits / tau
    if mask is not None:
        z = z.masked_fill(~mask, float("-inf"))
    return torch.softmax(z, dim=-1)


def gumbel_softmax(logits: torch.Tensor, mask: torch.Tensor | None, tau: float, generator: torch.Generator,
                   hard: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A Gumbel-softmax sample per row (Jang et al., 2017), noise from ``generator``.

    ``hard``: one-hot of the sample's argmax in the forward pass and the soft sample's
    gradient in the backward pass (straight-through), plus the sampled indices.
    """
    u = torch.rand(logits.shape, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
    soft = masked_softmax(logits - torch.log(-torch.log(u)), mask, tau)
    if not hard:
        return soft, None
    index = soft.detach().argmax(dim=-1)
    one = torch.zeros_like(soft).scatter_(-1, index[:, None], 1.0)
    return one - soft.detach() + soft, index


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the rows of a probability matrix (0 log 0 = 0)."""
    p = probs.clamp_min(1e-12)
    return -(probs * p.log()).sum(dim=-1).mean()


def from_numpy(weights: Mapping[str, np.ndarray]) -> ArchWeights:
    """Fixed (non-trainable) weights, e.g. one-hot weights of a discrete architecture."""
    return ArchWeights({k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in weights.items()})
