"""The ``morphism`` weights manager: a child architecture inherits its parent's trained weights.

LEMONADE / NASH-style search grows networks by function-preserving morphisms and
fine-tunes each child briefly instead of training it from scratch. This manager keeps
the most recent candidates it built (which the ``tune`` evaluator trains in place);
when a rollout names its parent (``rollout.info["parent"]``, the parent's architecture
string, as the ``morphism_evolution`` controller sets it), the child is built from the
parent's weights by the operators of :mod:`hwnas.search.weights.morphism_ops` (widen,
deepen, kernel-grow) and starts with exactly the parent's function. A rollout without
a parent gets a fresh network seeded by (run seed, architecture), as ``plain`` gives.

The space is the mbv2 block-wise space, where the three morphisms are its three kinds
of decisions: a larger expansion widens a block, a larger depth inserts blocks at the
end of a stage, a larger kernel grows a depthwise kernel. :func:`growth_mutations`
lists exactly the children that a morphism reaches from an architecture; anything else
(a shrink) is refused in one line.
"""
from __future__ import annotations

import copy
import logging
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from hwnas.config import opt
from hwnas.registry import register
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import Arch
from hwnas.search.spaces.mbv2 import STAGES, MBV2Space
from hwnas.search.weights.base import WeightsManager
from hwnas.search.weights.morphism_ops import MorphismError, morph_network
from hwnas.search.weights.plain import arch_seed

log = logging.getLogger(__name__)

#: Nodes of an mbv2 network before the searchable stages (stem, first block) and after them
#: (last block, 1x1 conv, pool, classifier).
HEAD_NODES, TAIL_NODES = 2, 4


def _next_larger(values: list[int], current: int, step_parity: bool = False) -> int | None:
    """Index of the smallest choice larger than ``current`` (keeping the parity of the
    difference even when ``step_parity``: kernels), or None."""
    bigger = [i for i, v in enumerate(values) if v > current and (not step_parity or (v - current) % 2 == 0)]
    return min(bigger, key=lambda i: values[i]) if bigger else None


def growth_mutations(space: MBV2Space, arch: Arch) -> list[tuple[str, Arch]]:
    """Every child one morphism away from ``arch``: (``widen`` | ``deepen`` | ``kernel``, child).
    Blocks a deepen inserts take the smallest expansion and kernel."""
    o, md = space.options, space.max_depth
    n = 1 + 2 * md
    base = list(space.validate(arch))
    e_min = int(np.argmin(o.expansions))
    k_min = int(np.argmin(o.kernels))
    out: list[tuple[str, Arch]] = []
    for s in range(len(STAGES)):
        start = s * n
        depth = o.depths[base[start]]
        d = _next_larger(list(o.depths), depth)
        if d is not None:
            child = list(base)
            child[start] = d
            for b in range(depth, o.depths[d]):
                child[start + 1 + 2 * b], child[start + 2 + 2 * b] = e_min, k_min
            out.append(("deepen", tuple(child)))
        for b in range(depth):
            ei, ki = start + 1 + 2 * b, start + 2 + 2 * b
            e = _next_larger(list(o.expansions), o.expansions[base[ei]])
            if e is not None and o.expansions[base[ei]] != 1:  # an e1 block has no hidden layer to widen
                out.append(("widen", tuple(base[:ei] + [e] + base[ei + 1:])))
            k = _next_larger(list(o.kernels), o.kernels[base[ki]], step_parity=True)
            if k is not None:
                out.append(("kernel", tuple(base[:ki] + [k] + base[ki + 1:])))
    return out


def node_map(space: MBV2Space, parent: Arch, child: Arch) -> list[int | None]:
    """For each node of the child's network, the parent node it inherits (None: a block
    inserted at the end of a stage); a shallower stage is a one-line MorphismError."""
    pd = [len(st) for st in space.stage_choices(parent)]
    cd = [len(st) for st in space.stage_choices(child)]
    out: list[int | None] = list(range(HEAD_NODES))
    p = HEAD_NODES
    for s, (a, b) in enumerate(zip(pd, cd)):
        if b < a:
            raise MorphismError(f"morphism {space.to_str(parent)} -> {space.to_str(child)}: stage {s} depth "
                                f"{a} -> {b} shrinks; a morphism only grows (widen, deepen, kernel-grow)")
        out += [p + i if i < a else None for i in range(b)]
        p += a
    return out + [p + i for i in range(TAIL_NODES)]


def check_growth(space: MBV2Space, parent: Arch, child: Arch) -> None:
    """A one-line MorphismError naming the first block whose expansion or kernel shrinks."""
    for s, (ps, cs) in enumerate(zip(space.stage_choices(parent), space.stage_choices(child))):
        for b, ((pe, pk), (ce, ck)) in enumerate(zip(ps, cs)):
            what = ("expansion", pe, ce) if ce < pe else ("kernel", pk, ck) if ck < pk else None
            if what is not None:
                raise MorphismError(f"morphism {space.to_str(parent)} -> {space.to_str(child)}: stage {s} block "
                                    f"{b} {what[0]} {what[1]} -> {what[2]} shrinks; a morphism only grows "
                                    "(widen, deepen, kernel-grow)")


@register("weights_manager", "morphism")
class MorphismWeightsManager(WeightsManager):
    """Children inherit their parent's weights through function-preserving morphisms."""

    #: Candidates depend on weights kept between them (pool workers cannot share them).
    inherits_weights = True

    @dataclass(frozen=True)
    class Options:
        keep: int = opt(16, min=1, max=10_000, help="recent candidates kept as possible parents (their weights "
                                                     "are checkpointed); keep it above the controller's "
                                                     "population plus the rollouts of a step")

    @classmethod
    def serves(cls, space_cls: type) -> bool:
        return issubclass(space_cls, MBV2Space)

    def __init__(self, options: Any = None, *, space: MBV2Space, seed: int = 0, **_: Any) -> None:
        self.check_space(type(space))
        self.options = options or MorphismWeightsManager.Options()
        self.space = space
        self.seed = int(seed)
        self.kept: OrderedDict[str, Any] = OrderedDict()

    def fresh(self, arch: Arch) -> Any:
        """A new network of ``arch`` seeded by (run seed, architecture), as ``plain`` builds it."""
        from hwnas.nn.builders import build_network

        return build_network(self.space.to_network(arch), seed=arch_seed(self.seed, self.space, arch))

    def morph(self, parent: Any, parent_arch: Arch, arch: Arch) -> Any:
        """A new network of ``arch`` computing what ``parent`` (a network of ``parent_arch``) computes."""
        parent_arch, arch = self.space.validate(parent_arch), self.space.validate(arch)
        check_growth(self.space, parent_arch, arch)
        nodes = node_map(self.space, parent_arch, arch)
        child = self.fresh(arch)
        if any(p.device.type != "cpu" for p in parent.parameters()):
            parent = copy.deepcopy(parent).cpu()
        rng = np.random.default_rng([self.seed, zlib.crc32(self.space.to_str(parent_arch).encode()),
                                     zlib.crc32(self.space.to_str(arch).encode())])
        morph_network(parent, child, nodes, rng)
        return child

    def assemble_candidate(self, rollout: Rollout) -> Any:
        arch = self.space.validate(rollout.arch)
        key = self.space.to_str(arch)
        parent_key = rollout.info.get("parent")
        parent = self.kept.get(parent_key) if isinstance(parent_key, str) else None
        if parent is not None:
            model = self.morph(parent, self.space.from_str(parent_key), arch)
        else:
            if parent_key is not None:
                rollout.info["morphism"] = "fresh: parent weights no longer kept"
                log.warning("%s: parent %s no longer kept (raise weights_manager.keep); trained from scratch",
                            key, parent_key)
            model = self.fresh(arch)
        self.kept[key] = model
        self.kept.move_to_end(key)
        while len(self.kept) > self.options.keep:
            self.kept.popitem(last=False)
        return model.train()

    def state_dict(self) -> dict[str, Any]:
        return {"kept": [{"arch": list(self.space.from_str(k)), "state": m.state_dict()} for k, m in self.kept.items()]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        import torch

        self.kept = OrderedDict()
        for item in state.get("kept", []):
            arch = self.space.validate(item["arch"])
            model = self.fresh(arch)
            model.load_state_dict({k: torch.as_tensor(v) for k, v in item["state"].items()})
            self.kept[self.space.to_str(arch)] = model
