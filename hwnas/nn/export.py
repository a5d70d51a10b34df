"""ONNX export of primitives and networks.

Why the TorchScript exporter (``dynamo=False``): it writes one self-contained file
(no ``.onnx.data`` sidecar), needs no onnxscript at export time, and its graphs load
in both onnxruntime and TVM Relax's ONNX frontend; the dynamo exporter without its
optimiser emits a Constant form that TVM rejects. Shapes are fixed (batch included)
because latency tables are per shape and TVM compiles static shapes best.
"""
from __future__ import annotations

import io
import logging
import time
import warnings
from pathlib import Path

import torch

from hwnas.errors import ProfilingError
from hwnas.nn.builders import build, example_input
from hwnas.primitives import NetworkSpec, Primitive

log = logging.getLogger(__name__)

#: ONNX opset: 17 is supported by onnxruntime >= 1.14 and TVM's Relax frontend.
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_bytes(target: Primitive | NetworkSpec, batch: int = 1, *, opset: int = OPSET,
                 module: torch.nn.Module | None = None) -> bytes:
    """The ONNX model of ``target`` (eval mode, fixed batch) as bytes.

    ``module`` lets a caller export the exact module it also runs (so outputs can be
    compared); otherwise a fresh one is built.
    """
    mod = (module if module is not None else build(target)).eval()
    x = example_input(target, batch)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(mod, (x,), buf, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], do_constant_folding=True)
    except Exception as exc:  # the exporter raises many types; all mean "cannot export"
        name = target.key if isinstance(target, Primitive) else target.hash
        raise ProfilingError(f"ONNX export of {name} failed: {type(exc).__name__}: {exc}") from exc
    return buf.getvalue()


def export_onnx(target: Primitive | NetworkSpec, path: str | Path, batch: int = 1, *,
                opset: int = OPSET, module: torch.nn.Module | None = None) -> Path:
    """Write the ONNX model of ``target`` to ``path`` and return the path."""
    t0 = time.perf_counter()
    data = export_bytes(target, batch, opset=opset, module=module)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    log.debug("exported %s (%d bytes) in %.3fs", p, len(data), time.perf_counter() - t0)
    return p
