"""Command-line glue of ``hwnas predict --onnx/--torch`` and ``hwnas fit-cost --model kernel``.

Each action parses, calls one library function (:func:`predict_model`,
:func:`hwnas.cost_models.kernel_fit.fit_kernel_model`) and prints.
"""
from __future__ import annotations

import argparse
from typing import Any

from hwnas.cli.common import local_path, non_negative
from hwnas.config import parse_kv
from hwnas.errors import ConfigError, CostModelError
from hwnas.ui import emit, format_table


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("any model")
    g.add_argument("--onnx", metavar="FILE", help="predict the latency of this ONNX model, per kernel")
    g.add_argument("--torch", metavar="MODULE:FACTORY", help="... of a torch module, e.g. hwnas.zoo:resnet18")
    g.add_argument("--torch-opt", action="append", metavar="KEY=VALUE", help="keyword option of the factory")
    g.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                   help="static shape of a model input (needed when the model's is dynamic)")
    g.add_argument("--predictor", metavar="DIR",
                   help="a kernel predictor folder (`hwnas fit-cost --model kernel`) or asset:NAME (default: the "
                        "shipped asset:kernel-cpu-ort, ONNX Runtime CPU, 1 thread)")
    g.add_argument("--top", type=non_negative, default=0, help="show only the N slowest kernels (default: all)")


def predict_model(predictor: str, source: Any) -> Any:
    """The kernel predictor's cost source prices one model (the library call behind the command)."""
    from hwnas.cost_models.source import SourceRequest, open_source
    from hwnas.cost_models.source_models import KernelSource

    src = open_source(SourceRequest(model=predictor, option="--predictor"), check_metric=False)
    src = getattr(src, "inner", src)  # an asset: the source of its kind
    if not isinstance(src, KernelSource):
        name = getattr(getattr(src, "model", None), "registry_name", "?")
        raise CostModelError(f"{predictor}: a {name!r} cost model predicts search-space networks; "
                             "--onnx/--torch need a kernel predictor (hwnas fit-cost --model kernel)")
    return src.predict_onnx(source.load())


def kernel_assets() -> list[str]:
    """Names of the shipped kernel-predictor assets."""
    from hwnas import assets

    return [a.name for a in assets.list_assets() if a.kind == "cost_model" and a.meta.get("predictor") == "kernel"]


def check_predictor(ref: str, default: bool) -> str | None:
    """Refuse an ``asset:`` predictor that does not exist or is not a kernel predictor (one
    line listing those that are); for one built on another machine, the note to print."""
    from hwnas import assets
    from hwnas.assets.kernel_asset import DEFAULT_REF, build_command, mismatch_line
    from hwnas.profilers.fingerprint import device_fingerprint

    here = device_fingerprint("cpu", 1).to_dict()
    if not assets.is_ref(ref):
        return _folder_note(ref, here)
    have = kernel_assets()
    listed = f"kernel predictor assets here: {', '.join(have)}" if have else "this install ships no kernel predictor"
    name = ref[len(assets.PREFIX):].partition("@")[0]
    if name not in {a.name for a in assets.list_assets()}:
        if default:
            raise ConfigError(f"--predictor: none given and the shipped {DEFAULT_REF} is not in this install "
                              f"({listed}); build one for this machine: {build_command()}, then --predictor DIR")
        raise ConfigError(f"--predictor: unknown asset {name!r}; {listed}")
    meta = assets.get(ref).meta
    if name not in have:
        raise ConfigError(f"--predictor: asset:{name} is a {meta.get('kind')} ({meta.get('title', '')[:60]}), not a "
                          f"kernel predictor; {listed}")
    return mismatch_line(f"asset:{name}", dict(meta.get("device_info") or {}), here)


def _folder_note(path: str, here: dict[str, Any]) -> str | None:
    """The mismatch note of a predictor folder, from the device its manifest records."""
    from hwnas.assets.kernel_asset import mismatch_line
    from hwnas.cost_models.persistence import read_manifest
    from hwnas.errors import HwnasError

    try:
        dev = read_manifest(local_path(path, "--predictor")).get("device") or {}
    except HwnasError:
        return None  # not a model folder: refused, with its reason, when it is loaded
    return mismatch_line(path, dict(dev.get("info") or {}) if isinstance(dev, dict) else {}, here)


def cmd_predict(args: argparse.Namespace) -> int:
    import sys

    from hwnas.assets.kernel_asset import DEFAULT_REF
    from hwnas.nn.onnx_graph import parse_input_shapes
    from hwnas.profilers.onnx_job import ModelSource

    predictor = args.predictor or args.model or DEFAULT_REF
    note = check_predictor(predictor, default=predictor == DEFAULT_REF and not (args.predictor or args.model))
    src = ModelSource(args.onnx, args.torch, parse_input_shapes(args.input_shape),
                      parse_kv(args.torch_opt, "--torch-opt"))
    pred = predict_model(predictor, src)
    if note:
        print(note, file=sys.stderr)
    rows = sorted(pred.kernels, key=lambda r: -r["ms"])[: args.top or None] if args.top else pred.kernels
    table = [{"kernel": r["kernel"], "ms": r["ms"], "share%": round(100 * r["share"], 1),
              "onnx nodes": ", ".join(r["nodes"])[:60]} for r in rows]
    head = (f"{pred.source}: predicted {pred.total_ms:.4g} ms ({len(pred.kernels)} kernels; naive per-node sum "
            f"{pred.naive_ms:.4g} ms) by {predictor}")
    doc = {**pred.to_dict(), "predictor": str(predictor), "fingerprint_note": note}
    emit(doc, as_json=args.json, table=head + "\n" + format_table(table))
    return 0


def cmd_fit_kernel(args: argparse.Namespace) -> int:
    from hwnas.cost_models.kernel_fit import fit_kernel_model
    from hwnas.store import Store

    if not args.store or not args.device:
        raise ConfigError("--model kernel needs --store (with `hwnas profile --kernels` results) and --device")
    with Store(local_path(args.store, "store"), readonly=True) as st:
        rep = fit_kernel_model(st, args.device, args.backend or "onnxruntime", test_frac=args.test_frac,
                               seed=args.seed, out=args.out)
    rows = [{"family": f, "train_kernels": n, **{k: (rep.get("held_out_kernels") or {}).get(f, {}).get(k)
                                                  for k in ("n", "mape", "within_10", "spearman")}}
            for f, n in rep["families"].items()]
    net, sums = rep.get("held_out_networks") or {}, rep.get("held_out_kernel_sums") or {}
    head = (f"kernel model from {rep['data']['networks']} random networks ({rep['data']['kernels']} kernels): "
            f"{rep['n_train']} train / {rep['n_test']} held out, load {rep['load_s']} s, fit {rep['fit_s']} s"
            + (f"; held-out networks: MAPE {100 * net['mape']:.1f}%, within ±10% {100 * net['within_10']:.1f}%"
               if "mape" in net else "")
            + (f" (kernel sums: MAPE {100 * sums['mape']:.1f}%)" if "mape" in sums else "")
            + (f", {int(net['refused'])} refused (a kernel family unseen in training)" if net.get("refused") else "")
            + (f"; saved to {rep['out']}" if rep.get("out") else ""))
    emit(rep, as_json=args.json, table=head + "\n" + format_table(rows))
    return 0
