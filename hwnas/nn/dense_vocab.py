"""The dense-cell operation names and kernels, without torch: the ``dense_cell`` space
names its choices with them and :mod:`hwnas.nn.graph_ops` builds them, so the two can
never disagree, and importing the space does not import torch."""
from __future__ import annotations

#: Operations a dense node can apply to everything before it (its output: ``growth`` channels).
DENSE_OPS: tuple[str, ...] = ("conv1x1", "conv3x3", "conv5x5", "sep_conv3x3", "bottleneck3x3", "avg_pool3x3")
#: Kernel of each dense op (the Primitive's ``kernel`` field).
DENSE_KERNEL: dict[str, int] = {"conv1x1": 1, "conv3x3": 3, "conv5x5": 5, "sep_conv3x3": 3, "bottleneck3x3": 3,
                                "avg_pool3x3": 3}
