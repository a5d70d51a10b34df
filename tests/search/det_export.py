"""Shared check of the detection tests: an exported detector computes what the shared weights do."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def exported_matches_shared(space: Any, net: Any, size: int, warm_steps: int) -> tuple[torch.Tensor, Any, Any]:
    """Move BN statistics away from their init on ``warm_steps`` sampled subnets, then check
    that the exported detector of one architecture gives the candidate's outputs; returns
    (input, candidate, exported detector) for further checks."""
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    net.train()
    with torch.no_grad():
        for a in range(warm_steps):
            net(x, net.wm.config_of(space.sample(np.random.default_rng(a))))
    arch = space.sample(np.random.default_rng(7))
    cand = net.candidate(arch).eval()
    exported = net.export(arch)
    with torch.no_grad():
        loc_a, conf_a = cand(x)
        loc_b, conf_b = exported(x)
    torch.testing.assert_close(loc_a, loc_b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(conf_a, conf_b, rtol=1e-4, atol=1e-5)
    return x, cand, exported
