"""SSD default boxes (priors).

The layout of the SSD paper (Liu et al. 2016, section 2.2) as its reference code tiles it:
for feature map ``k`` of ``m``, the scale ``s_k = s_min + (s_max - s_min) (k - 1) / (m - 1)``;
at each cell centre ``((i + 0.5) / f_k, (j + 0.5) / f_k)`` one square prior of side
``s_k``, one of side ``sqrt(s_k s_{k+1})`` (``s_{m+1} = 1``), and for each aspect ratio
``r`` of the map a pair ``(s_k sqrt(r), s_k / sqrt(r))`` and its transpose. SSD300 uses
``s_min = 0.2``, ``s_max = 0.9`` with ratios {2} on the first and last two maps and
{2, 3} elsewhere (4 or 6 priors per cell); coordinates are clipped to [0, 1].
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


def scales(n_maps: int, s_min: float, s_max: float) -> list[float]:
    """``s_1 .. s_m`` and the closing ``s_{m+1} = 1`` used by the last map's extra prior."""
    if n_maps == 1:
        return [s_min, 1.0]
    return [s_min + (s_max - s_min) * k / (n_maps - 1) for k in range(n_maps)] + [1.0]


def priors_per_cell(ratios: Sequence[float]) -> int:
    """Two squares plus a pair per aspect ratio."""
    return 2 + 2 * len(ratios)


def make_priors(sizes: Sequence[int], ratios: Sequence[Sequence[float]], s_min: float = 0.2,
                s_max: float = 0.9) -> torch.Tensor:
    """All priors, ``(cx, cy, w, h)`` rows in [0, 1], in the order the head predicts them:
    map by map, row-major over cells, then the cell's priors."""
    s = scales(len(sizes), s_min, s_max)
    rows: list[list[float]] = []
    for k, (f, rs) in enumerate(zip(sizes, ratios)):
        shapes = [(s[k], s[k]), (math.sqrt(s[k] * s[k + 1]),) * 2]
        for r in rs:
            shapes += [(s[k] * math.sqrt(r), s[k] / math.sqrt(r)), (s[k] / math.sqrt(r), s[k] * math.sqrt(r))]
        for i in range(f):
            for j in range(f):
                cx, cy = (j + 0.5) / f, (i + 0.5) / f
                rows += [[cx, cy, w, h] for w, h in shapes]
    return torch.tensor(rows, dtype=torch.float32).clamp(0.0, 1.0)
