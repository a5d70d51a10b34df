from __future__ import annotations

import numpy as np
import pytest

from hwnas import registry
from hwnas.cost_models.features import (
    GraphFeaturizer,
    NodeFeatures,
    PositionFeaturizer,
    SequenceFeaturizer,
    SumCountFeaturizer,
    encode,
    featurizer_from_config,
)
from hwnas.errors import CostModelError
from hwnas.primitives import NetworkSpec, Primitive


def _nets():
    a = Primitive("conv", 3, 8, 32, 32, kernel=3, act="relu")
    b = Primitive("dwconv", 8, 8, 32, 32, kernel=5, groups=8)
    c = Primitive("fc", 8, 10, 1, 1)
    n1 = NetworkSpec.chain((3, 32, 32), [a, b, c])
    n2 = NetworkSpec((3, 32, 32), (a, b, b, c), ((0, 1), (0, 2), (1, 3), (2, 3)))
    table = {a.key: 1.0, b.key: 2.0, c.key: 0.5}
    return [n1, n2], table, (a, b, c)


def test_sum_count_and_position():
    nets, table, _ = _nets()
    x = SumCountFeaturizer(table).fit(nets).transform(nets)
    np.testing.assert_allclose(x, [[3.5, 3], [5.5, 4]])
    pos = PositionFeaturizer(table).fit(nets).transform(nets)
    np.testing.assert_allclose(pos, [[1.0, 2.0, 0.5, 0.0], [1.0, 2.0, 2.0, 0.5]])


def test_sequence_rows_and_log_latency_column():
    nets, table, (a, b, c) = _nets()
    f = SequenceFeaturizer(table).fit(nets)
    x, lens = f.transform(nets)
    assert x.shape == (2, 4, f.nodes_.dim) and list(lens) == [3, 4]
    cols = f.nodes_.columns
    assert x[0, 0, cols.index("op=conv")] == 1 and x[0, 1, cols.index("op=dwconv")] == 1
    assert x[0, 0, cols.index("act=relu")] == 1
    assert x[0, 1, cols.index("kernel")] == 5 and x[0, 1, cols.index("log2_groups")] == 3
    assert x[0, 1, cols.index("log_table")] == pytest.approx(np.log(2.0))
    assert not x[0, 3].any()  # padding
    free = SequenceFeaturizer().fit(nets)
    assert free.nodes_.dim == f.nodes_.dim - 1 and "log_table" not in free.nodes_.columns


def test_graph_batch_offsets_edges():
    nets, table, _ = _nets()
    g = GraphFeaturizer(table).fit(nets).transform(nets)
    assert g.num_nodes == 7 and g.batch.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert g.edge_index.t().tolist() == [[0, 1], [1, 2], [3, 4], [3, 5], [4, 6], [5, 6]]
    single = GraphFeaturizer(table).fit(nets).to_data(nets[1])
    assert single.x.shape[0] == 4


def test_missing_primitive_raises_naming_key():
    nets, table, (a, b, c) = _nets()
    other = Primitive("conv", 8, 16, 16, 16, kernel=3)
    net = NetworkSpec.chain((3, 32, 32), [a, b, other])
    for cls in (SumCountFeaturizer, SequenceFeaturizer, GraphFeaturizer):
        f = cls(table).fit(nets)
        with pytest.raises(CostModelError, match="conv c8>16 16x16 k3 s1"):
            f.transform([net])
    with pytest.raises(CostModelError, match="needs a cost table"):
        SumCountFeaturizer()


def test_unknown_op_goes_to_other_and_cache_reuses_rows():
    nets, table, (a, b, c) = _nets()
    nf = NodeFeatures(["conv"], table)
    enc = encode(nf, nets)
    assert list(enc.ids) == [0, 1, 2, 0, 1, 1, 2]
    assert nf.matrix[1, nf.columns.index("op=other")] == 1


def test_registry_and_config_roundtrip():
    nets, table, _ = _nets()
    assert {"sum_count", "position", "sequence", "graph"} <= {e.name for e in registry.list("featurizer")}
    f = PositionFeaturizer(table).fit(nets)
    g = featurizer_from_config(f.config(), table)
    np.testing.assert_array_equal(f.transform(nets), g.transform(nets))
    longer = NetworkSpec.chain((3, 32, 32), list(nets[1].nodes) + [nets[1].nodes[-1]])
    with pytest.raises(CostModelError, match="at most 4"):
        f.transform([longer])
