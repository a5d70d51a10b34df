"""The rnn_cell space: genotype strings (ours and DARTS'), strict parsing, derivation, and
the shared language model computing what a discrete cell says."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.errors import ValidationError
from hwnas.search.archweights import ArchWeights
from hwnas.search.language.model import Genotype
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.rnn_cell import RnnCellSpace
from hwnas.search.weights.mixed import MixedPlan
from hwnas.search.weights.rnn_supernet import RnnSupernet

#: DARTS' published recurrent cell (DARTS_V2 of the reference code).
DARTS_V2 = ("Genotype(recurrent=[('sigmoid', 0), ('relu', 1), ('relu', 1), ('identity', 1), ('tanh', 2), "
            "('sigmoid', 5), ('tanh', 3), ('relu', 5)], concat=range(1, 9))")


def test_darts_published_cell_pastes_in_and_round_trips() -> None:
    space = RnnCellSpace()
    arch = space.from_str(DARTS_V2)
    assert space.to_str(arch) == "sigmoid~0|relu~1|relu~1|identity~1|tanh~2|sigmoid~5|tanh~3|relu~5"
    assert space.to_darts_str(arch) == DARTS_V2
    assert space.from_str(space.to_str(arch)) == arch
    net = space.to_network(arch)
    assert [p.op for p in net.nodes] == ["embedding", "rnn_input"] + ["rnn_node"] * 8 + ["rnn_mean", "lm_decoder"]
    assert (1, 2) in net.edges and (6, 7) in net.edges  # node 5 (tanh~2) reads node 1's output (state 2)


@pytest.mark.parametrize("text,fragment", [
    ("tanh~0|relu~1", "expected 8"),
    ("tanh~0|relu~1|relu~1|identity~1|tanh~2|sigmoid~5|tanh~3|relu~9", "node 7: input must be 0..7"),
    ("tanh~0|gelu~1|relu~1|identity~1|tanh~2|sigmoid~5|tanh~3|relu~5", "unknown activation 'gelu'"),
    ("tanh~0|relu~+1|relu~1|identity~1|tanh~2|sigmoid~5|tanh~3|relu~5", "expected ACT~INPUT"),
    ("tanh~0|relu~\u0661|relu~1|identity~1|tanh~2|sigmoid~5|tanh~3|relu~5", "ASCII"),
    (DARTS_V2.replace("range(1, 9)", "range(1, 8)"), "concat must be range(1, 9)"),
    (DARTS_V2.replace("('relu', 1), ('relu'", "('relu', 1), x, ('relu'"), "pairs only"),
])
def test_bad_genotypes_are_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        RnnCellSpace().from_str(text)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_derive_picks_each_nodes_strongest_input_and_activation() -> None:
    space = RnnCellSpace(nodes=3, activations=["tanh", "relu"])
    w = np.zeros((6, 2))  # rows: (0,0) (1,0) (1,1) (2,0) (2,1) (2,2)
    w[0, 1], w[2, 0], w[1, 1], w[5, 1], w[3, 0] = 0.9, 0.8, 0.5, 0.7, 0.6
    assert space.to_str(space.derive({"recurrent": w})) == "relu~0|tanh~1|relu~2"
    arch = space.from_str("relu~0|tanh~1|relu~2")
    assert space.derive(space.arch_weights(arch)) == arch


def small() -> tuple[RnnCellSpace, RnnSupernet]:
    space = RnnCellSpace(nodes=3, num_classes=20, emb=6, nhid=6, seq_len=4)
    return space, RnnSupernet(RnnSupernet.Options(), space=space, seed=0)


def test_one_hot_weights_compute_the_discrete_cell_and_gradients_reach_them() -> None:
    space, wm = small()
    arch = space.from_str("sigmoid~0|relu~1|tanh~1")
    x = torch.randint(0, 20, (2, 4), generator=torch.Generator().manual_seed(0))
    wm.module.eval()
    discrete = wm.assemble_candidate(Rollout(arch))
    w = torch.tensor(space.arch_weights(arch)["recurrent"], dtype=torch.float32, requires_grad=True)
    mixed = wm.assemble_candidate(Rollout(arch, arch_weights=ArchWeights({"recurrent": w})))
    out = mixed(x)
    assert torch.allclose(out, discrete(x), atol=1e-6)
    out.sum().backward()
    assert w.grad is not None and float(w.grad.abs().sum()) > 0
    soft = torch.softmax(torch.randn(6, 4), 1)
    assert isinstance(wm.assemble_candidate(Rollout(arch, arch_weights=ArchWeights({"recurrent": soft}))).plan,
                      MixedPlan)


def test_hidden_state_carries_across_windows() -> None:
    space, wm = small()
    cand = wm.assemble_candidate(Rollout(space.from_str("tanh~0|relu~1|identity~2")))
    assert isinstance(cand.plan, Genotype)
    cand.eval()
    x = torch.randint(0, 20, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole, _ = cand.step(x, None)
        first, h = cand.step(x[:, :4], None)
        second, _ = cand.step(x[:, 4:], h)
    whole = whole.view(2, 8, 20)
    assert torch.allclose(whole[:, 4:], second.view(2, 4, 20), atol=1e-5)  # same as reading on
    assert torch.allclose(whole[:, :4], first.view(2, 4, 20), atol=1e-6)
    with torch.no_grad():
        fresh, _ = cand.step(x[:, 4:], None)
    assert not torch.allclose(fresh, second)
