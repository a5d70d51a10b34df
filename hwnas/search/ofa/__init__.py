"""Once-for-All after training: an accuracy predictor over a trained supernet's subnets
and per-device specialisation under each device's cost source (``hwnas specialize``).

* :mod:`~hwnas.search.ofa.sampling` - sample subnets of a supernet run and score them with
  the inherited weights (BN recalibrated, held-out split);
* :mod:`~hwnas.search.ofa.predictor` - the one-hot architecture encoding and the first
  accuracy predictor (an MLP), saved without pickle (JSON manifest + ``state_dict``);
* :mod:`~hwnas.search.ofa.features` and :mod:`~hwnas.search.ofa.ensemble` - the richer
  features and the predictor specialisation uses: ridge / MLP / boosted trees chosen by
  cross-validation on the training subnets;
* :mod:`~hwnas.search.ofa.pricing` - how a candidate is priced: a profiled store by its
  primitives' LUT sum calibrated on its own whole-network rows, other sources by theirs;
* :mod:`~hwnas.search.ofa.specialize` - evolutionary search over the predictor under a
  latency budget, for many targets in one call.
"""
from __future__ import annotations
