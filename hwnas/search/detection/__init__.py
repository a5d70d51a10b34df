"""Object detection: VOC / COCO datasets, a synthetic set, SSD(Lite) heads over backbone
feature maps, batched NMS, mAP, and a DetNAS-style backbone search (``flow``).

Submodules load lazily: importing this package costs nothing; the datasets register
themselves when :mod:`hwnas.search.datasets` imports :mod:`.data`.
"""
from __future__ import annotations
