"""nb101: the unique-cell count against a brute-force isomorphism count, the graph hash
and canonical form on isomorphic and non-isomorphic cells, pruning, validity, the
network's channel rules, and the table evaluator keyed by the hash."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.errors import ConfigError, ValidationError
from hwnas.nn.builders import build_network
from hwnas.search.spaces.nb101 import NB101Space
from hwnas.search.spaces.nb101_graph import count_unique, fingerprint, full_dags, prune
from hwnas.search.spaces.nb101_net import vertex_channels

from .conftest import DATA, write_config

SMALL = {"stem_channels": 8, "stacks": 2, "cells_per_stack": 1, "resolution": 8, "in_channels": 1}


def orbit(m: np.ndarray, labels: tuple[int, ...]) -> frozenset:
    """Every (matrix, labels) renumbering of the interior vertices: two cells are
    isomorphic exactly when their orbits are equal (independent of any hash)."""
    v = m.shape[0]
    out = set()
    for p in itertools.permutations(range(1, v - 1)):
        q = (0, *p, v - 1)
        out.add((m[np.ix_(q, q)].tobytes(), tuple(labels[i - 1] for i in p)))
    return frozenset(out)


@pytest.mark.parametrize("max_edges,n_ops", [(9, 3), (5, 2)])
def test_unique_count_matches_brute_force_isomorphism(max_edges: int, n_ops: int) -> None:
    """Up to 5 vertices, the vectorised count, the benchmark hash and the exact canonical
    form all count the classes that explicit permutation finds."""
    space = NB101Space(vertices=5, max_edges=max_edges, **SMALL)
    counted = count_unique(5, max_edges, n_ops)
    for v in range(2, 6):
        orbits, hashes, canon = set(), set(), set()
        for m in full_dags(v, max_edges):
            assert prune(m, [0] * v)[0].shape == m.shape  # a full DAG loses nothing to pruning
            for lab in itertools.product(range(n_ops), repeat=v - 2):
                orbits.add(orbit(m, lab))
                hashes.add(fingerprint(m, [-1, *lab, -2]))
                canon.add(space.canonical(space.from_cell(m, list(lab))))
        assert counted[v] == len(orbits) == len(hashes) == len(canon), v
    if (max_edges, n_ops) == (9, 3):
        assert sum(counted.values()) == 1 + 6 + 84 + 2441


def random_relabel(space: NB101Space, arch: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
    """The same cell with its interior vertices renumbered (keeping the matrix upper-triangular)."""
    m, ops = space.cell(arch)
    v = m.shape[0]
    while True:
        q = (0, *(1 + rng.permutation(v - 2)), v - 1)
        mm = m[np.ix_(q, q)]
        if not np.tril(mm).any():
            return space.from_cell(mm, [ops[i - 1] for i in q[1:-1]])


def test_isomorphic_cells_share_hash_form_and_network() -> None:
    space = NB101Space(**SMALL)
    rng = np.random.default_rng(5)
    seen: dict[tuple[int, ...], str] = {}
    moved = 0
    for _ in range(60):
        a = space.sample(rng)
        b = random_relabel(space, a, rng)
        moved += a != b
        assert space.arch_hash(a) == space.arch_hash(b)
        assert space.canonical(a) == space.canonical(b)
        assert space.to_network(a).hash == space.to_network(b).hash
        assert space.cell_graph(a).hash == space.cell_graph(b).hash
        seen[space.canonical(a)] = space.arch_hash(a)
    assert moved > 20  # the renumbering really changed most matrices
    assert len(set(seen.values())) == len(seen)  # different canonical cells, different hashes


def test_pruning_and_validity() -> None:
    space = NB101Space(**SMALL)
    # input -> 1 -> output, plus vertex 2 fed by 1 but feeding nothing: pruned away
    m = np.zeros((7, 7), dtype=int)
    m[0, 1] = m[1, 6] = m[1, 2] = 1
    dangling = space.from_cell(m, [0, 1, 2, 0, 0])
    small = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert space.arch_hash(dangling) == space.arch_hash(space.from_cell(small, [0]))
    assert space.to_network(dangling).hash == space.to_network(space.from_cell(small, [0])).hash
    no_path = np.zeros((7, 7), dtype=int)
    no_path[0, 1] = no_path[2, 6] = 1
    with pytest.raises(ValidationError, match="no path"):
        space.from_cell(no_path, [0] * 5)
    dense = np.triu(np.ones((7, 7), dtype=int), 1)
    with pytest.raises(ValidationError, match="21 edges, at most 9"):
        space.from_cell(dense, [0] * 5)
    with pytest.raises(ValidationError, match="cannot parse"):
        space.from_str("01/00|conv5x5")
    with pytest.raises(ConfigError, match="stem_channels"):
        NB101Space(stem_channels=4, vertices=7)


def test_mutation_and_crossover_stay_valid() -> None:
    space = NB101Space(**SMALL)
    rng = np.random.default_rng(1)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(100):
        child = space.mutate(a, rng)
        assert space.validate(child) == child and space.canonical(child) == child != a
        mixed = space.crossover(a, b, rng)
        assert space.validate(mixed) == mixed
        a, b = child, mixed


def test_channel_rules_and_network_runs() -> None:
    # three vertices feed the output: 128 split 43/43/42; vertex 1 feeds only vertex 2
    m = np.zeros((6, 6), dtype=int)
    m[0, 1] = m[1, 2] = m[2, 5] = m[0, 3] = m[3, 5] = m[0, 4] = m[4, 5] = 1
    assert vertex_channels(64, 128, m) == [64, 43, 43, 43, 42, 128]
    space = NB101Space(**SMALL)
    rng = np.random.default_rng(2)
    x = torch.randn(3, 1, 8, 8)
    for _ in range(4):
        net = space.to_network(space.sample(rng))
        assert sum(p.op == "max_pool_2x2" for p in net.nodes) == SMALL["stacks"] - 1
        assert build_network(net)(x).shape == (3, 10)
    residual = space.from_str("011/001/000|conv3x3-bn-relu")  # input -> output added to the concat
    net = space.to_network(residual)
    assert sum(p.op == "identity" for p in net.nodes) == SMALL["stacks"] * SMALL["cells_per_stack"]


def test_table_by_hash_reads_isomorphic_cells_from_one_row(tmp_path: Path) -> None:
    from hwnas.search.evaluators.table import TableEvaluator
    from hwnas.search.objectives.classification import ClassificationObjective
    from hwnas.search.rollout import Rollout

    space = NB101Space(vertices=4, **SMALL)
    opts = TableEvaluator.Options(table=DATA / "nb101-synthetic.csv", key="module_hash", key_form="hash",
                                  perfs={"accuracy": "test_accuracy"})
    ev = TableEvaluator(opts, space=space, objective=ClassificationObjective(ClassificationObjective.Options()))
    a = space.from_str("0110/0001/0001/0000|conv3x3-bn-relu,maxpool3x3")
    b = space.from_str("0110/0001/0001/0000|maxpool3x3,conv3x3-bn-relu")  # vertices 1 and 2 swapped
    rs = [Rollout(a), Rollout(b)]
    ev.evaluate(rs)
    assert rs[0].perfs["accuracy"] == rs[1].perfs["accuracy"] and ev.queries == 1
    by_str = TableEvaluator(TableEvaluator.Options(table=opts.table, key="arch_str", perfs=opts.perfs),
                            space=space, objective=ev.objective)
    assert by_str.lookup(space.to_str(space.canonical(b))) == {"accuracy": rs[0].perfs["accuracy"]}
    with pytest.raises(ConfigError, match="no graph hash"):
        from hwnas.search.spaces.nb201 import NB201Space

        TableEvaluator(opts, space=NB201Space(), objective=ev.objective)



@pytest.mark.parametrize("name,steps", [("search-nb101-table-cpu.yaml", 30), ("search-nb101-digits-cpu.yaml", 2)])
def test_miniature_configs_run(name: str, steps: int, tmp_path: Path) -> None:
    """The shipped configs search end to end (the digits one cut to two candidates); the
    best cell is valid and, from the table, carries its hash's row."""
    import pandas as pd
    import yaml

    from hwnas.search.api import SearchOverrides, run_search

    cfg = Path(__file__).resolve().parents[2] / "configs" / name
    run_cfg = cfg
    if "digits" in name:  # the shipped config on a slice of the training set (test time)
        data = yaml.safe_load(cfg.read_text())
        data["dataset"]["max_train"] = 256
        run_cfg = write_config(tmp_path / name, **data)
    out = run_search(run_cfg, SearchOverrides(steps=steps), run_dir=tmp_path / "run")
    assert out["steps"] == steps
    opts = {k: v for k, v in yaml.safe_load(cfg.read_text())["search_space"].items() if k != "type"}
    space = NB101Space(**opts)
    best = yaml.safe_load((tmp_path / "run" / "summary.yaml").read_text())["best"]
    arch = space.from_str(best["arch_str"])
    assert space.canonical(arch) == arch
    if "table" in name:
        table = pd.read_csv(DATA / "nb101-synthetic.csv").set_index("module_hash")
        assert best["perfs"]["accuracy"] == pytest.approx(table.loc[space.arch_hash(arch), "test_accuracy"])
    else:
        assert 0.0 <= best["perfs"]["accuracy"] <= 1.0


@pytest.mark.parametrize("name", ["random", "evolution", "annealing", "rl"])
def test_controllers_propose_valid_cells(name: str) -> None:
    """Controllers that draw decisions independently (rl) or vary parents (evolution,
    annealing) only propose valid cells: rl redraws, the space's variation operators retry."""
    from hwnas import registry

    space = NB101Space(**SMALL)
    cls = registry.get("controller", name)
    ctrl = cls(cls.Options(), space=space, seed=3)
    for _ in range(6):
        rs = ctrl.sample(4)
        for r in rs:
            assert space.validate(r.arch) == r.arch
            m, _ = space.pruned(r.arch)
            r.reward = float(m.sum())  # any deterministic score
            r.perfs = {"accuracy": r.reward}
        ctrl.step(rs)
