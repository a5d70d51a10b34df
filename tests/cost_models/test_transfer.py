from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from hwnas.cost_models import synthetic
from hwnas.cost_models.transfer import MultiDeviceMLP, ridge_loo


def test_ridge_loo_recovers_linear_map():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(30, 3))
    w, b, alpha = ridge_loo(Z, Z @ np.array([0.5, -1.0, 2.0]) + 3.0)
    np.testing.assert_allclose(w, [0.5, -1.0, 2.0], atol=0.05)
    assert abs(b - 3.0) < 0.05 and alpha <= 0.1


def test_new_device_from_few_shots():
    """Source devices follow different cost laws; the new device behaves like one of them
    (another scale and curvature), which 10 measured networks must reveal."""
    nets, base, table = synthetic.synthetic_dataset("fbnet", n=160, seed=5, noise=0.0)
    count = np.array([len([p for p in n.nodes if p.op == "mbconv" and p.kernel == 5]) for n in nets], float)
    laws = np.stack([base, 0.2 + 0.05 * count], 1)
    src = laws @ np.array([[1.0, 0.05], [0.05, 1.0], [0.5, 0.5]]).T
    new = 3.0 * src[:, 1] ** 1.2
    model = MultiDeviceMLP(steps=300, hidden=64).fit(nets[:120], src[:120], ["a", "b", "c"])
    source_rho = spearmanr(src[130:, 1], model.predict_device(nets[130:], "b")).statistic
    adapted = model.adapt(nets[120:130], new[120:130])
    rho = spearmanr(new[130:], adapted.predict(nets[130:])).statistic
    assert int(np.argmax(adapted.w_)) == 1  # the embedding points at the matching source device
    assert rho > 0.5 and rho > 0.8 * source_rho  # adaptation keeps what the source model knows
