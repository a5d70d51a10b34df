"""Contract suite of the ``op`` role: the profilers' block builders (hwnas/nn/builders.py).

Every backend times the module a builder makes, and a network is the chain of them, so
a builder must honour the shape its Primitive announces: ``(N, c_out, *out_hw)``, or
``(N, c_out)`` for ``fc``. The suite builds each op at a small shape (and at a strided,
widening one, which an op may refuse with a ProfilingError) and runs it. A builder that
needs other fields (extras, a kernel) may carry ``example(tmp_dir) -> list[Primitive]``
as an attribute; the suite then uses those primitives instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.primitives import Primitive
from hwnas.testing._common import ContractError, component, expect

ROLE = "op"


def primitives(name: str, builder: Any, tmp_dir: Path) -> tuple[list[Primitive], list[Primitive]]:
    """(must build, may refuse) primitives for the op."""
    hook = getattr(builder, "example", None)
    if callable(hook):
        return list(hook(tmp_dir)), []
    return [Primitive(name, 8, 8, 6, 6, kernel=3)], [Primitive(name, 8, 16, 6, 6, kernel=3, stride=2)]


def expected_shape(p: Primitive, batch: int) -> tuple[int, ...]:
    return (batch, p.c_out) if p.op == "fc" else (batch, p.c_out, *p.out_hw)


def check_primitive(name: str, p: Primitive) -> None:
    """Seeded, deterministic module of the announced output shape; global RNG untouched."""
    import torch

    from hwnas.nn.builders import build_primitive, example_input

    state = torch.get_rng_state()
    module = build_primitive(p)
    expect(torch.equal(state, torch.get_rng_state()), ROLE, name, "building must not draw from torch's global RNG")
    x = example_input(p, 2)
    with torch.no_grad():
        out = module(x)
        again = build_primitive(p)(x)
    want = expected_shape(p, 2)
    expect(tuple(out.shape) == want, ROLE, name, f"{p.key}: output shape {tuple(out.shape)}, expected {want}")
    expect(bool(torch.isfinite(out).all()), ROLE, name, f"{p.key}: output must be finite")
    expect(torch.equal(out, again), ROLE, name, f"{p.key}: two builds must compute the same function (seeded)")


def check(name: str, tmp_dir: Path | Any) -> None:
    """Build and run the op at the suite's shapes."""
    builder = component(ROLE, name)
    expect(callable(builder), ROLE, name, "a builder must be callable with a Primitive")
    must, may = primitives(name, builder, Path(tmp_dir))
    expect(must, ROLE, name, "its example() must give at least one primitive")
    for p in must:
        try:
            check_primitive(name, p)
        except HwnasError as exc:
            raise ContractError(f"{ROLE} {name!r}: cannot build {p.key}: {exc}") from None
    for p in may:
        try:
            check_primitive(name, p)
        except HwnasError:
            continue  # the op declares this shape unsupported, as a user error
