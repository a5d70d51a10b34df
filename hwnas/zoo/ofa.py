"""Once-for-All MobileNetV3 subnets (the ``mbv3`` search space) as zoo models.

Unlike :func:`hwnas.zoo.mobile.ofa_subnet` (a random draw written with the zoo's own
blocks), these are named points of the ``mbv3`` space built by the profilers' builders
from the space's own network, so a zoo measurement of ``ofa_mbv3(arch="max")`` and the
composition of the space's profiled primitives describe the very same graph.
"""
from __future__ import annotations

from torch import nn

from hwnas.errors import ValidationError

#: Named subnets: per stage depth, and the same (expansion, kernel) in every block.
PRESETS: dict[str, tuple[int, int, int]] = {"max": (4, 6, 7), "mid": (3, 4, 5), "min": (2, 3, 3)}


def ofa_mbv3_arch(arch: str = "max", resolution: int = 224) -> str:
    """The full ``mbv3`` architecture string of a preset name or of a stages string
    (``d2:e3k5,e6k3|...``, five stages), at ``resolution``."""
    if arch in PRESETS:
        d, e, k = PRESETS[arch]
        arch = "|".join(f"d{d}:" + ",".join([f"e{e}k{k}"] * d) for _ in range(5))
    elif not isinstance(arch, str) or arch.startswith("r"):
        raise ValidationError(f"ofa_mbv3: arch must be one of {', '.join(PRESETS)} or the five stages "
                              f"'d2:e3k5,e6k3|...' (the resolution is its own option), got {str(arch)[:60]!r}")
    return f"r{resolution}|{arch}"


def ofa_mbv3(arch: str = "max", width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> nn.Module:
    """An OFA-MobileNetV3 subnet (``max``: depth 4, e6, k7 everywhere; ``mid``: 3, e4, k5;
    ``min``: 2, e3, k3; or a stages string) of the ``mbv3`` space at ``width``."""
    from hwnas.config import build_space
    from hwnas.nn.builders import build_network

    space = build_space("mbv3", {"resolutions": [resolution], "width": width, "num_classes": num_classes},
                        path="ofa_mbv3")
    spec = space.to_network(space.from_str(ofa_mbv3_arch(arch, resolution)))
    model = build_network(spec)
    model.input_shape = (1, *spec.input_shape)  # type: ignore[attr-defined]
    return model.eval()
