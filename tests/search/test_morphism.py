"""Morphism weights manager and controller: each operator preserves the parent's function
(logits within 1e-5 in eval mode) on random parents, what cannot preserve it is refused in
one line, and a small LEMONADE-style search fine-tunes children grown from their parents."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hwnas import registry
from hwnas.errors import ConfigError
from hwnas.nn.builders import MBConv
from hwnas.search.api import SearchOverrides, run_search
from hwnas.search.controllers.morphism_evolution import MorphismEvolutionController
from hwnas.search.rollout import Rollout
from hwnas.search.weights.morphism import MorphismWeightsManager, growth_mutations
from hwnas.search.weights.morphism_ops import MorphismError, grow_kernel, identity_block, transfer_mbconv

SPACE = {"resolution": 16, "width": 0.25, "num_classes": 10}


def _space(**kw: object) -> object:
    return registry.build("search_space", "mbv2", **{**SPACE, **kw})


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Move every weight and BN statistic away from its init, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point():
                t.add_(0.1 * torch.randn(t.shape, generator=g))
            if name.endswith("running_var"):
                t.abs_().add_(0.1)  # variances stay positive


@pytest.mark.parametrize("kind", ["widen", "deepen", "kernel"])
def test_each_operator_preserves_the_function(kind: str) -> None:
    sp = _space()
    wm = MorphismWeightsManager(space=sp, seed=3)
    rng = np.random.default_rng(11)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    tried = 0
    for trial in range(6):  # several random parents
        arch = sp.sample(rng)
        children = [c for k, c in growth_mutations(sp, arch) if k == kind]
        if not children:
            continue
        parent = wm.assemble_candidate(Rollout(arch))
        _randomise(parent, trial)
        with torch.no_grad():
            ref = parent.eval()(x)
        child_arch = children[int(rng.integers(len(children)))]
        child = wm.assemble_candidate(Rollout(child_arch, info={"parent": sp.to_str(arch)})).eval()
        assert sp.to_str(child_arch) != sp.to_str(arch)  # really another network
        with torch.no_grad():
            out = child(x)
        assert out.shape == ref.shape and float((out - ref).abs().max()) < 1e-5, (kind, sp.to_str(child_arch))
        with torch.no_grad():  # in float64 only the float32 rounding of the divided weights is left
            exact = float((child.double()(x.double()) - parent.double()(x.double())).abs().max())
        assert exact < 1e-8 * max(1.0, float(ref.abs().max())), (kind, exact)
        tried += 1
    assert tried >= 3


def test_multi_step_growth_from_a_trained_parent_keeps_the_function() -> None:
    sp = _space()
    wm = MorphismWeightsManager(space=sp, seed=0)
    arch = sp.validate([0] * len(sp.decisions))  # the smallest architecture
    parent = wm.assemble_candidate(Rollout(arch))
    opt = torch.optim.SGD(parent.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):  # a few real training steps (train-mode BN updates the statistics)
        xb, yb = torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)
        loss = torch.nn.functional.cross_entropy(parent(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    child, rng = arch, np.random.default_rng(5)
    for _ in range(4):  # widen, deepen and grow kernels at once
        options = growth_mutations(sp, child)
        child = options[int(rng.integers(len(options)))][1]
    x = torch.randn(3, 3, 16, 16, generator=g)
    with torch.no_grad():
        ref = parent.eval()(x)
        out = wm.assemble_candidate(Rollout(child, info={"parent": sp.to_str(arch)})).eval()(x)
    assert float((out - ref).abs().max()) < 1e-5


def test_what_cannot_preserve_the_function_is_refused_in_one_line() -> None:
    sp = _space()
    wm = MorphismWeightsManager(space=sp, seed=0)
    big = sp.from_str("d3:e6k5,e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3")
    wm.assemble_candidate(Rollout(big))
    for smaller, what in [("d3:e3k5,e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3", "expansion 6 -> 3"),
                          ("d3:e6k3,e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3", "kernel 5 -> 3"),
                          ("d2:e6k5,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3", "depth 3 -> 2")]:
        with pytest.raises(MorphismError, match="shrinks; a morphism only grows") as e:
            wm.assemble_candidate(Rollout(sp.from_str(smaller), info={"parent": sp.to_str(big)}))
        assert what in str(e.value) and "\n" not in str(e.value)
    w = torch.randn(4, 1, 3, 3)
    with pytest.raises(MorphismError, match=r"^conv: kernel 3 -> 4: only odd sizes keep the centre"):
        grow_kernel(w, 4)
    with pytest.raises(MorphismError, match=r"^conv: kernel 3 -> 1 shrinks"):
        grow_kernel(w, 1)
    assert torch.equal(grow_kernel(w, 5)[:, :, 1:4, 1:4], w)
    from hwnas.primitives import Primitive

    strided = MBConv(Primitive("mbconv", 8, 8, 8, 8, kernel=3, stride=2, expansion=3))
    with pytest.raises(MorphismError, match="only a residual block .* can be inserted as the identity"):
        identity_block(strided)
    e1 = MBConv(Primitive("mbconv", 8, 8, 8, 8, kernel=3, expansion=1))
    with pytest.raises(MorphismError, match="blocks differ in shape or stride|cannot be widened"):
        transfer_mbconv(e1, MBConv(Primitive("mbconv", 8, 8, 8, 8, kernel=3, expansion=3)), np.random.default_rng(0))


def test_other_spaces_are_refused_in_one_line() -> None:
    nb201 = registry.build("search_space", "nb201")
    with pytest.raises(ConfigError, match=r"^weights_manager.type: morphism serves the search space\(s\) .*mbv2"):
        MorphismWeightsManager(space=nb201)
    with pytest.raises(ConfigError, match=r"^controller.type: morphism_evolution grows mbv2 architectures"):
        MorphismEvolutionController(MorphismEvolutionController.Options(), space=nb201)


def test_morphism_search_fine_tunes_children_and_resumes(tmp_path: Path) -> None:
    data = {"seed": 2, "run": {"device": "cpu"},
            "dataset": {"type": "digits", "resolution": 8, "channels": 1, "max_train": 128},
            "search_space": {"type": "mbv2", "resolution": 8, "in_channels": 1, "width": 0.25, "num_classes": 10},
            "controller": {"type": "morphism_evolution", "population": 2, "sample_size": 2},
            "weights_manager": {"type": "morphism", "keep": 8},
            "evaluator": {"type": "tune", "epochs": 1, "batch_size": 32, "max_steps": 2, "bn_recalibrate": 1,
                          "threads": 1},
            "objective": {"type": "classification", "max_batches": 1},
            "trainer": {"type": "simple", "steps": 2, "rollouts_per_step": 2, "checkpoint_every": 1, "plot": False}}
    cfg = tmp_path / "morph.yaml"
    cfg.write_text(yaml.safe_dump(data))
    run_search(cfg, run_dir=tmp_path / "a")
    resumed = run_search(cfg, SearchOverrides(steps=3), run_dir=tmp_path / "a")  # kept weights from the checkpoint
    whole = run_search(cfg, SearchOverrides(steps=3), run_dir=tmp_path / "b")
    assert resumed["resumed_at"] == 2 and resumed["rollouts"] == whole["rollouts"] == 6
    hist = [r["info"] for r in json.loads((tmp_path / "b" / "checkpoint.json").read_text())["state"]["history"]]
    children = [i for i in hist if "parent" in i]
    assert len(children) >= 2 and all(i["morphism"] != "initial" and not i["morphism"].startswith("fresh")
                                      for i in children)  # grown from kept (trained) parent weights
    assert (tmp_path / "a" / "rollouts.csv").read_text() == (tmp_path / "b" / "rollouts.csv").read_text()
