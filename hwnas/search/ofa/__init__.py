"""Once-for-All after training: an accuracy predictor over a trained supernet's subnets
and per-device specialisation under each device's cost source (``hwnas specialize``).

* :mod:`~hwnas.search.ofa.sampling` - sample subnets of a supernet run and score them with
  the inherited weights (BN recalibrated, held-out split);
* :mod:`~hwnas.search.ofa.predictor` - the architecture encoding and the accuracy
  predictor, saved without pickle (JSON manifest + ``state_dict``);
* :mod:`~hwnas.search.ofa.specialize` - evolutionary search over the predictor under a
  latency budget, for many targets in one call.
"""
from __future__ import annotations
