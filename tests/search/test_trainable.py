"""Final-training extras of cell networks: auxiliary head, drop-path, the profiled module."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.config import build_space
from hwnas.errors import ConfigError
from hwnas.nn.builders import build_network
from hwnas.search.trainable import TrainableNetwork, build_model, inference_state

TINY = {"cells": 3, "channels": 4, "nodes": 2, "resolution": 8, "in_channels": 1}


def test_trainable_network_is_the_profiled_network_plus_training_extras() -> None:
    space = build_space("darts", TINY)
    arch = space.sample(np.random.default_rng(0))
    model = build_model(space, arch, auxiliary=True, drop_path=True)
    assert isinstance(model, TrainableNetwork)
    x = torch.randn(4, 1, 8, 8)
    model.train()
    model.drop_path_prob = 0.5
    logits, aux = model(x)
    assert logits.shape == aux.shape == (4, 10)
    model.eval()  # no head, no dropping: the profiled network's function
    plain = build_network(space.to_network(arch)).eval()
    plain.load_state_dict(inference_state(model.state_dict()))
    torch.testing.assert_close(model(x), plain(x))
    # drop-path zeroes whole examples of the marked op outputs, so training outputs vary
    model.train()
    torch.manual_seed(0)
    a = model(x)[0]
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x)[0])


def test_spaces_without_markers_refuse_the_extras() -> None:
    space = build_space("nb201", {"channels": 4, "cells_per_stage": 1, "resolution": 8, "in_channels": 1})
    arch = space.sample(np.random.default_rng(0))
    with pytest.raises(ConfigError, match="run.train.auxiliary_weight: networks of space nb201 have no"):
        build_model(space, arch, auxiliary=True)
    with pytest.raises(ConfigError, match="run.train.drop_path: networks of space nb201 mark no"):
        build_model(space, arch, drop_path=True)
