"""The end-to-end map of a kernel model: from the sum of a network's kernel times to the
network's latency, ``e2e = a + sum_k max(b * t_k + c_f(k), 0)``.

Why a per-kernel term at all: the kernel job times kernels with the runtime's profiler on,
which adds a cost to every executed node that an end-to-end run does not pay, and a
runtime pays a dispatch cost per node that kernel times leave out; so the measured sum of
a network's kernels is off its end-to-end time by an amount that grows with the number of
*executed nodes*, not with their time (on the kernel job's random networks: 10% of a small
network's time, ~0 of a big one's).

Why per family: one kernel is not one executed node. A squeeze-excite kernel is five
(pool, two 1x1 convolutions, the gate, the multiply), a channel shuffle three, a fused
convolution one. With one ``c`` for every kernel, SE-heavy small models (MobileNetV3-small)
were over-priced by 18% and plain ones with big kernels (MobileNetV2) under-priced. Each
family gets its own ``c_f``, fitted jointly with ``a, b`` on the kernel job's random
networks (relative least squares, every network's error counted relative to its time), and
pulled towards the common ``c`` by a prior worth :data:`PRIOR_NETWORKS` networks: a family
seen in few networks keeps (nearly) the common cost. On the shipped asset's 1,793 random
networks, 3 folds by network, each held-out network priced from its predicted kernels:
MAPE 8.16% -> 7.98% (same trees, only the map differs; the fitted SE cost is about -9 us
per kernel against -2 us for a convolution). Nothing here was chosen on zoo models.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.cost_models.kernel_features import family

#: Weight of the common per-kernel cost as a prior on each family's, in networks: as much as
#: that many networks of the family tell about its cost beyond ``a, b`` (the kernel job
#: measures hundreds to thousands of networks).
PRIOR_NETWORKS = 20.0


def fit_overhead(nets: Sequence[Any]) -> tuple[float, float, float]:
    """e2e ~ a + b * (sum of kernel times) + c * (kernels), relative least squares. A
    negative per-kernel term is allowed (profiled kernel times include a per-node cost
    the model does not pay), but a and b must not be: refit with all three >= 0 when
    they come out negative, which would predict negative latencies for small models."""
    from scipy.optimize import nnls

    if len(nets) < 3:
        return (0.0, 1.0, 0.0)
    y = np.asarray([n.e2e_ms for n in nets])
    x = np.asarray([[1.0, sum(n.kernel_ms), len(n.kernels)] for n in nets]) / y[:, None]
    coef, *_ = np.linalg.lstsq(x, np.ones_like(y), rcond=None)
    if coef[0] < 0 or coef[1] <= 0:
        coef, _ = nnls(x, np.ones_like(y))
    if coef[1] <= 0:  # degenerate data: the plain sum
        return (0.0, 1.0, 0.0)
    return (float(coef[0]), float(coef[1]), float(coef[2]))


def fit_kernel_costs(nets: Sequence[Any], common: tuple[float, float, float]
                     ) -> tuple[tuple[float, float, float], dict[str, float]]:
    """``((a, b, c), {family: c_f})``: ``a, b`` and every ``c_f`` fitted jointly (relative
    least squares) with a ridge pulling each ``c_f`` towards the common map's ``c``; its
    weight is that of :data:`PRIOR_NETWORKS` networks of the family.
    ``c`` stays for families never seen. Returns ``common`` and no family costs when the
    joint fit is degenerate (``a < 0`` or ``b <= 0``) or the data too small to say anything
    per family. (A plain least-squares fit shrunk afterwards was worse on held-out random
    networks: MAPE 8.13% against 7.98%, 3 folds of the shipped asset's 1,793.)"""
    fams = sorted({family(p.op) for n in nets for p in n.kernels if p.op != "input"})
    if len(nets) < 3 * (len(fams) + 2):
        return common, {}
    col = {f: i for i, f in enumerate(fams)}
    y = np.asarray([n.e2e_ms for n in nets], dtype=float)
    counts = np.zeros((len(nets), len(fams)))
    for r, n in enumerate(nets):
        for p in n.kernels:
            if p.op != "input":
                counts[r, col[family(p.op)]] += 1
    x = np.column_stack([np.ones(len(nets)), [sum(n.kernel_ms) for n in nets], counts]) / y[:, None]
    # A network's information on c_f is what its count column adds beyond a and b (the
    # column minus its projection on theirs), so the prior is worth PRIOR_NETWORKS networks.
    base = x[:, :2]
    resid = x[:, 2:] - base @ np.linalg.lstsq(base, x[:, 2:], rcond=None)[0]
    lam = np.zeros(x.shape[1])
    for i in range(len(fams)):
        has = counts[:, i] > 0
        lam[2 + i] = PRIOR_NETWORKS * float(np.sum(resid[:, i] ** 2)) / max(int(has.sum()), 1)
    prior = np.concatenate([[common[0], common[1]], np.full(len(fams), common[2])])
    coef = np.linalg.solve(x.T @ x + np.diag(lam), x.T @ np.ones(len(nets)) + lam * prior)
    if coef[0] < 0 or coef[1] <= 0:
        return common, {}
    return (float(coef[0]), float(coef[1]), common[2]), {f: float(coef[2 + i]) for f, i in col.items()}
