"""Contract suite of the ``weights_manager`` role (see hwnas/search/weights/base.py).

Candidates are what evaluators train and score, so the suite runs them: logits of the
right shape, the same function when the same rollout is assembled again, no draws
from torch's global random stream (which would make a resumed search diverge), and
for shared weights, parameters owned by the supernet and restored from its state.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.search.rollout import Rollout
from hwnas.search.weights.base import WeightsManager
from hwnas.testing._common import expect
from hwnas.testing._search import Parts, example_parts, sample_rollouts

ROLE = "weights_manager"


def run(model: Any, x: Any) -> Any:
    """Eval-mode output without gradients; the module's mode is restored afterwards."""
    import torch

    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was)


def example_input(parts: Parts, arch: tuple[int, ...]) -> Any:
    import torch

    own = getattr(parts.space, "example_input", None)  # spaces whose networks read tokens, not images
    if callable(own):
        return own(2, torch.Generator().manual_seed(0))
    shape = parts.space.to_network(arch).input_shape
    return torch.randn((2, *shape), generator=torch.Generator().manual_seed(0))


def check_candidate(name: str, parts: Parts, wm: WeightsManager, rollout: Rollout) -> None:
    """Logits of (batch, classes); the same function twice; global RNG untouched."""
    import torch

    net = parts.space.to_network(rollout.arch)
    classes = net.nodes[-1].c_out
    x = example_input(parts, rollout.arch)
    state = torch.get_rng_state()
    cand = wm.assemble_candidate(rollout)
    expect(torch.equal(state, torch.get_rng_state()), ROLE, name,
           "assemble_candidate() must not draw from torch's global random stream")
    expect(isinstance(cand, torch.nn.Module), ROLE, name, f"a candidate must be a torch.nn.Module, got {type(cand)}")
    out = run(cand, x)
    rows = getattr(parts.space, "output_rows", lambda b: b)(2)  # language models: one row per token
    expect(tuple(out.shape) == (rows, classes) and bool(torch.isfinite(out).all()), ROLE, name,
           f"candidate of {rollout.arch} must give finite logits of shape ({rows}, {classes}), got {tuple(out.shape)}")
    again = run(wm.assemble_candidate(Rollout(rollout.arch)), x)
    expect(torch.equal(out, again), ROLE, name, "the same rollout assembled twice must compute the same function")
    export = getattr(wm, "export_subnet", None)
    try:  # a manager may refuse, in one line, to export a subnet it cannot give (e.g. mixed-op supernets)
        module = export(rollout.arch) if callable(export) else None
    except HwnasError:
        module = None
    if module is not None:
        exported = run(module, x)
        expect(torch.allclose(exported, out, rtol=1e-4, atol=1e-5), ROLE, name,
               f"export_subnet({rollout.arch}) must compute what the candidate computes")


def check_shared(name: str, wm: Any, rollout: Rollout) -> None:
    """A shared-weight candidate's parameters belong to ``module``; move the weights away
    from their seeded init, so that restoring them (below) is tested for real."""
    import torch

    owned = {id(p) for p in wm.module.parameters()}
    cand = wm.assemble_candidate(Rollout(rollout.arch))
    expect({id(p) for p in cand.parameters()} <= owned, ROLE, name,
           "a shared-weight candidate's parameters must be parameters of the manager's module")
    with torch.no_grad():
        for p in wm.module.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))


def check_restore(name: str, parts: Parts, wm: Any, rollouts: list[Rollout], tmp_dir: Path) -> None:
    """A manager loaded from the checkpointed state gives the same candidates (built with
    another seed when weights are shared, so only the state can make them equal)."""
    import torch

    from hwnas.search.trainers.checkpoint import load_checkpoint, save_checkpoint
    from hwnas.testing._search import build

    folder = tmp_dir / f"wm-{name}"
    save_checkpoint(folder, {"weights_manager": wm.state_dict()}, 0)
    shared = hasattr(wm, "module")
    other = build(parts.config, seed=parts.config.seed + int(shared)).weights_manager
    other.load_state_dict((load_checkpoint(folder) or {})["weights_manager"])
    for r in rollouts:
        x = example_input(parts, r.arch)
        a, b = run(wm.assemble_candidate(Rollout(r.arch)), x), run(other.assemble_candidate(Rollout(r.arch)), x)
        expect(torch.equal(a, b), ROLE, name, "a manager restored from state_dict() must give the same candidates")


def check(name: str, tmp_dir: Path | Any) -> None:
    """Candidates of a few random (and, for supernets, extreme) architectures."""
    from hwnas import registry

    tmp_dir = Path(tmp_dir)
    parts = example_parts(ROLE, name, tmp_dir)
    wm = parts.weights_manager
    expect(isinstance(wm, WeightsManager), ROLE, name, "must subclass hwnas.search.weights.base.WeightsManager")
    spaces = {e.name for e in registry.list("search_space")}
    served = tuple(getattr(wm, "supernet_for", ()))
    expect(all(isinstance(s, str) and s in spaces for s in served), ROLE, name,
           f"supernet_for must name registered spaces, got {served!r}")
    expect(not served or parts.space.registry_name in served, ROLE, name,
           f"its example space {parts.space.registry_name!r} is not among supernet_for {served!r}")
    rollouts = sample_rollouts(parts, 3)
    extreme = getattr(wm, "extreme_arch", None)
    if callable(extreme):
        try:  # a space without an order of size refuses the sandwich rule in one line
            rollouts += [Rollout(extreme("max")), Rollout(extreme("min"))]
        except HwnasError as exc:
            expect("\n" not in str(exc) and "uniform" in str(exc), ROLE, name,
                   f"extreme_arch refused without a one-line hint to use uniform sampling: {exc}")
    for r in rollouts:
        check_candidate(name, parts, wm, r)
    if hasattr(wm, "module"):
        check_shared(name, wm, rollouts[0])
    check_restore(name, parts, wm, rollouts, tmp_dir)
