"""REINFORCE with an LSTM policy (Zoph & Le, 2017; the ENAS-style controller).

The policy walks the decisions in order; at each one an LSTM cell reads the embedding
of the previous choice and a per-decision head gives the logits of this one, so later
choices can depend on earlier ones. The update is plain REINFORCE with an
exponential-moving-average baseline (variance reduction) and an optional entropy
bonus (keeps exploring). All randomness comes from the controller's own torch
Generator, so a resumed search draws exactly what an uninterrupted one would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.controllers.base import Controller
from hwnas.search.controllers.simple import valid_reward
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch, SearchSpace

#: Rounds of redrawing invalid architectures before ``sample`` gives up.
REDRAWS = 100


def _policy_class() -> type:
    import torch
    from torch import nn

    class LSTMPolicy(nn.Module):
        """Autoregressive categorical policy over a list of decision sizes."""

        def __init__(self, sizes: Sequence[int], hidden: int) -> None:
            super().__init__()
            self.sizes = list(sizes)
            offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]) + 1  # token 0 = start
            self.offsets = [int(o) for o in offsets]
            self.hidden = hidden
            self.embed = nn.Embedding(1 + sum(self.sizes), hidden)
            self.cell = nn.LSTMCell(hidden, hidden)
            self.heads = nn.ModuleList(nn.Linear(hidden, s) for s in self.sizes)

        def forward(self, batch: int, archs: "torch.Tensor | None" = None,
                    generator: "torch.Generator | None" = None) -> tuple[Any, Any, Any]:
            """Sample (archs None) or score given archs: (archs, log-prob sums, entropy sums).
            Draws use the CPU ``generator`` whatever the device, so a run samples the
            same architectures on a GPU as on the CPU."""
            dev = self.embed.weight.device
            h = torch.zeros(batch, self.hidden, device=dev)
            c = torch.zeros(batch, self.hidden, device=dev)
            tok = torch.zeros(batch, dtype=torch.long, device=dev)
            chosen, logp, ent = [], torch.zeros(batch, device=dev), torch.zeros(batch, device=dev)
            for i, head in enumerate(self.heads):
                h, c = self.cell(self.embed(tok), (h, c))
                log_probs = torch.log_softmax(head(h), dim=-1)
                if archs is None:
                    probs = log_probs.exp().detach().cpu()
                    a = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(dev)
                else:
                    a = archs[:, i]
                chosen.append(a)
                logp = logp + log_probs.gather(1, a[:, None]).squeeze(1)
                ent = ent - (log_probs.exp() * log_probs).sum(-1)
                tok = a + self.offsets[i]
            return torch.stack(chosen, 1), logp, ent

        def beam(self, width: int) -> tuple[Any, Any]:
            """Beam search: about the ``width`` most likely architectures and their log-probs."""
            h, c = torch.zeros(1, self.hidden), torch.zeros(1, self.hidden)
            tok, logp = torch.zeros(1, dtype=torch.long), torch.zeros(1)
            seqs = torch.zeros(1, 0, dtype=torch.long)
            for i, head in enumerate(self.heads):
                h, c = self.cell(self.embed(tok), (h, c))
                total = (logp[:, None] + torch.log_softmax(head(h), dim=-1)).flatten()
                top = total.topk(min(width, total.numel()))
                rows, choice = top.indices // self.sizes[i], top.indices % self.sizes[i]
                seqs = torch.cat([seqs[rows], choice[:, None]], 1)
                h, c, logp, tok = h[rows], c[rows], top.values, choice + self.offsets[i]
            return seqs, logp

    return LSTMPolicy


@register("controller", "rl")
class RLController(Controller):
    """REINFORCE with an LSTM policy over the decisions and a moving-average baseline."""

    @dataclass(frozen=True)
    class Options:
        hidden: int = opt(64, min=4, help="LSTM hidden size")
        lr: float = opt(0.02, gt=0, help="Adam learning rate of the policy")
        baseline_decay: float = opt(0.9, min=0.0, lt=1.0, help="decay of the moving-average reward baseline")
        entropy_weight: float = opt(0.0, min=0.0, help="weight of the entropy bonus (more = more exploration)")
        normalize: bool = opt(True, help="divide advantages by their running std (scale-free learning rate)")

    def __init__(self, options: Any, *, space: SearchSpace, seed: int = 0, runtime: Any = None) -> None:
        import torch

        super().__init__(options, space=space, seed=seed)
        self.device = runtime.device if runtime is not None else torch.device("cpu")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.policy = _policy_class()(space.sizes, options.hidden).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=options.lr)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.baseline: float | None = None
        self.var = 1.0

    def sample(self, n: int = 1) -> list[Rollout]:
        """``n`` draws from the policy; in spaces with constraints across decisions (nb101:
        a path from input to output, at most 9 edges) an invalid draw is redrawn, so the
        policy samples from itself restricted to valid architectures."""
        import torch

        from hwnas.errors import ValidationError

        out: list[Rollout] = []
        for _ in range(REDRAWS):
            with torch.no_grad():
                archs, _, _ = self.policy(n - len(out), generator=self.generator)
            for row in archs.tolist():
                arch = tuple(int(x) for x in row)
                try:
                    out.append(Rollout(self.space.validate(arch)))
                except ValidationError:
                    continue
            if len(out) == n:
                return out
        raise ValidationError(f"controller.rl: the policy drew no valid {self.space.name} architecture in "
                              f"{REDRAWS} rounds")

    def step(self, rollouts: Sequence[Rollout]) -> None:
        import torch

        done = [r for r in rollouts if valid_reward(r)]
        if not done:
            return
        rewards = np.array([float(r.reward) for r in done])  # type: ignore[arg-type]
        o = self.options
        if self.baseline is None:
            self.baseline = float(rewards.mean())
        adv = rewards - self.baseline
        if o.normalize:
            self.var = o.baseline_decay * self.var + (1 - o.baseline_decay) * float((adv ** 2).mean())
            adv = adv / max(np.sqrt(self.var), 1e-8)
        archs = torch.tensor([list(r.arch) for r in done], dtype=torch.long, device=self.device)
        _, logp, ent = self.policy(len(done), archs=archs)
        loss = -(torch.as_tensor(adv, dtype=torch.float32, device=self.device) * logp).mean() - o.entropy_weight * ent.mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.baseline = o.baseline_decay * self.baseline + (1 - o.baseline_decay) * float(rewards.mean())

    def ranked(self, n: int) -> list[tuple[Arch, float]]:
        """The policy's most likely architectures (beam search), with their log-probabilities."""
        import torch

        with torch.no_grad():
            seqs, logp = self.policy.beam(max(n, 1) * 4)
        out: dict[Arch, float] = {}
        for row, lp in zip(seqs.tolist(), logp.tolist()):
            out.setdefault(self.space.canonical(tuple(int(x) for x in row)), float(lp))
        return list(out.items())[:n]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng_state(), "policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "baseline": self.baseline, "var": self.var}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_rng_state(state["rng"])
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.var = float(state["var"])
