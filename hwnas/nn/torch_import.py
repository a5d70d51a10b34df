"""Torch modules from a factory (``package.module:function``) and their ONNX export.

Why a factory string and not a pickled module: a string names code the user already
trusts and installed; loading a pickled module would run whatever the file contains.
The export uses the same exporter settings as primitives (see
:mod:`hwnas.nn.export`), so a zoo model and a search-space block are measured
through the same path.
"""
from __future__ import annotations

import importlib
import io
import warnings
from typing import Any, Mapping, Sequence

from hwnas.errors import ModelImportError
from hwnas.nn.export import INPUT_NAME, OPSET, OUTPUT_NAME


def load_factory(spec: str, options: Mapping[str, Any] | None = None) -> Any:
    """Call ``module:function`` with keyword ``options``; it must return a torch module."""
    import torch

    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ModelImportError(f"--torch: expected MODULE:FACTORY (e.g. hwnas.zoo:mobilenet_v2), got {spec!r}")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ModelImportError(f"--torch {spec}: cannot import {mod_name!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelImportError(f"--torch {spec}: {mod_name} has no callable {attr!r}")
    try:
        model = factory(**dict(options or {}))
    except TypeError as exc:
        raise ModelImportError(f"--torch {spec}: bad factory options ({exc})") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelImportError(f"--torch {spec}: the factory returned {type(model).__name__}, not a torch module")
    return model.eval()


def input_shape_of(model: Any, given: Sequence[int] | None, spec: str) -> tuple[int, ...]:
    """The (N, C, H, W) to export with: ``given``, else the module's ``input_shape``."""
    shape = tuple(given) if given else tuple(getattr(model, "input_shape", ()) or ())
    if not shape:
        raise ModelImportError(f"--torch {spec}: the module has no input_shape attribute; give "
                               "--input-shape 1x3x224x224")
    return tuple(int(d) for d in shape)


def export_module(model: Any, shape: Sequence[int], spec: str = "module") -> bytes:
    """ONNX bytes of ``model`` in eval mode for one fixed input shape."""
    import torch

    x = torch.randn(tuple(shape), generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model.eval(), (x,), buf, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True)
    except Exception as exc:  # the exporter raises many types; all mean "cannot export"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelImportError(f"--torch {spec}: ONNX export failed ({type(exc).__name__}: {first})") from None
    return buf.getvalue()
