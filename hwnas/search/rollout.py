"""The rollout: the one record that passes between the search engine's roles.

A controller proposes rollouts, a weights manager fills their ``candidate``, an evaluator
fills ``perfs`` and ``reward``, and the controller learns from them. Only ``arch``,
``perfs``, ``reward``, ``step`` and ``info`` are persisted (checkpoints, CSV); the
candidate is a runnable network and is dropped once evaluated; so are the architecture
weights of a differentiable rollout (see ``hwnas.search.archweights``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from hwnas.errors import ValidationError

if TYPE_CHECKING:
    from hwnas.search.spaces.base import Arch, SearchSpace


@dataclass
class Rollout:
    """An architecture and what has been measured or predicted about it.

    ``perfs`` maps perf names (``accuracy``, ``latency_ms``, ``energy_mj``, ``loss``,
    ...) to floats; ``reward`` is the scalar a single-objective controller maximises
    (set by the objective). ``candidate`` is the runnable filled by the weights manager
    (not persisted).
    """

    arch: Arch
    perfs: dict[str, float] = field(default_factory=dict)
    reward: float | None = None
    step: int = -1
    candidate: Any = field(default=None, repr=False, compare=False)
    info: dict[str, Any] = field(default_factory=dict)
    #: Differentiable rollouts: the architecture weights (an ``ArchWeights``, in the
    #: autograd graph of the controller's logits) the supernet mixes by; ``arch`` is
    #: then the architecture they derive to. Not persisted.
    arch_weights: Any = field(default=None, repr=False, compare=False)

    def to_dict(self, space: SearchSpace | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"arch": list(self.arch), "perfs": dict(self.perfs), "reward": self.reward,
                             "step": self.step}
        if space is not None:
            d["arch_str"] = space.to_str(self.arch)
        if self.info:
            d["info"] = dict(self.info)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rollout:
        """Inverse of :meth:`to_dict`; a damaged record is a one-line ValidationError."""
        if not isinstance(d, Mapping) or "arch" not in d:
            raise ValidationError("rollout: expected a mapping with 'arch'")
        arch, perfs, info = d["arch"], d.get("perfs") or {}, d.get("info") or {}
        if not isinstance(arch, (list, tuple)) or any(isinstance(a, bool) or not isinstance(a, int) for a in arch):
            raise ValidationError(f"rollout.arch: expected a list of choice indices, got {str(arch)[:60]}")
        if not isinstance(perfs, Mapping) or not isinstance(info, Mapping):
            raise ValidationError("rollout: perfs and info must be mappings")
        from hwnas.search.ckpt_schema import check_perfs, check_reward

        perf_vals = check_perfs(perfs, "rollout")
        reward = check_reward(d.get("reward"), "rollout")
        step = d.get("step", -1)
        if isinstance(step, bool) or not isinstance(step, int) or step < -1:
            raise ValidationError(f"rollout.step: expected an integer >= -1, got {str(step)[:40]}")
        return cls(tuple(arch), perf_vals, reward, step, None, dict(info))
