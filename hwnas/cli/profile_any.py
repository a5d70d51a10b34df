"""Command-line glue of ``hwnas profile --onnx/--torch/--kernels/--fusion-rules``.

Kept apart from the search-space profiling glue so it moves as one piece; each action
parses, calls one library function (:func:`hwnas.profilers.onnx_job.profile_model`,
:func:`hwnas.profilers.kernel_job.profile_kernels`,
:func:`hwnas.profilers.kernel_job.measure_fusion_rules`) and prints.
"""
from __future__ import annotations

import argparse
from typing import Any

from hwnas.cli.common import finite, positive
from hwnas.config import parse_kv
from hwnas.errors import ConfigError
from hwnas.ui import emit, format_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("any model (instead of --space)")
    g.add_argument("--onnx", metavar="FILE", help="profile this ONNX model end to end and per kernel")
    g.add_argument("--torch", metavar="MODULE:FACTORY", help="profile a torch module (exported to ONNX), "
                                                             "e.g. hwnas.zoo:mobilenet_v2")
    g.add_argument("--torch-opt", action="append", metavar="KEY=VALUE", help="keyword option of the factory")
    g.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                   help="static shape of a model input (needed when the model's is dynamic)")
    g.add_argument("--no-per-node", action="store_true", help="--onnx/--torch: end to end only")
    g.add_argument("--kernels", type=positive, metavar="N",
                   help="kernel job: time the kernels of N random networks (resumable; see --rounds, --time-limit)")
    g.add_argument("--rounds", type=positive, default=4, help="--kernels: adaptive sampling rounds (default %(default)s)")
    g.add_argument("--time-limit", type=finite, metavar="S",
                   help="stop after S seconds, between two items (any job; a rerun resumes)")
    g.add_argument("--no-adaptive", action="store_true", help="--kernels: draw all rounds evenly, never stop early")
    g.add_argument("--stop-mape", type=finite, default=0.04, metavar="SHARE",
                   help="--kernels: stop drawing a block family once its held-out networks' MAPE is at most this "
                        "(0 never stops; default %(default)s); the job ends early when all are")
    g.add_argument("--stop-min-networks", type=positive, default=20, metavar="N",
                   help="--kernels: ... judged on at least N held-out networks (default %(default)s)")
    g.add_argument("--detector", metavar="CONFIG",
                   help="a detection config (hwnas detect): profile its detector's primitives, backbone + head")
    g.add_argument("--fusion-rules", action="store_true",
                   help="measure this device's fusion and layout rules again (the kernel job does it once)")


def wants(args: argparse.Namespace) -> bool:
    return bool(args.onnx or args.torch or args.kernels or args.fusion_rules)


def run(args: argparse.Namespace, request: Any) -> int:
    """Dispatch one of the any-model actions (exactly one may be given)."""
    from hwnas.store import Store

    chosen = [n for n in ("space", "onnx", "torch", "kernels", "fusion_rules") if getattr(args, n)]
    if len(chosen) > 1 and set(chosen) != {"onnx", "torch"}:
        raise ConfigError(f"give only one of --space, --onnx/--torch, --kernels, --fusion-rules (got "
                          f"{', '.join('--' + c.replace('_', '-') for c in chosen)})")
    if args.onnx or args.torch:
        return _model(args, request)
    with Store(args.store) as store:
        if args.fusion_rules:
            return _rules(args, store)
        return _kernels(args, store, request)


def _rules(args: argparse.Namespace, store: Any) -> int:
    from hwnas.profilers.kernel_job import measure_fusion_rules

    res = measure_fusion_rules(store, device=args.device, threads=args.threads)
    rows = [{"pair": k, **{f: v.get(f) for f in ("t1", "t2", "t12", "gain", "fused", "merged")}}
            for k, v in sorted(res["pairs"].items())]
    emit(res, as_json=args.json, table=f"{res['device']} ({res['device_fingerprint']}): channel block {res['block']}, "
                                       f"{len(res['fused'])} pairs are one kernel, in {res['wall_s']} s\n"
                                       + format_table(rows))
    return 0


def _kernels(args: argparse.Namespace, store: Any, request: Any) -> int:
    from hwnas.cost_models.kernel_fit import advise_round
    from hwnas.profilers.kernel_job import KernelSampling, StopRule, profile_kernels

    # The advice (kernel predictors fitted on earlier rounds, priced through a KernelSource)
    # is a cost-model decision: the command passes it to the profiler, which never imports it.
    stop = StopRule(args.stop_mape, args.stop_min_networks)
    s = profile_kernels(store, request, KernelSampling(rounds=args.rounds, adaptive=not args.no_adaptive, stop=stop),
                        advisor=advise_round)
    rows = [{"block family": b, **{k: f.get(k) for k in ("networks", "mape", "accurate", "stopped_round")}}
            for b, f in sorted(s.families.items())]
    state = ("complete: every block family accurate, stopped early" if s.stopped_early else
             "complete" if s.complete else "stopped at the time limit; rerun to resume")
    emit(s.to_dict(), as_json=args.json,
         table=f"kernel job on {s.device} ({s.device_fingerprint}): {s.measured} networks measured "
               f"({s.kernels} kernels; detection matched the runtime on {s.clean}), {s.skipped} already in "
               f"{s.store}, {s.failed} failed, {s.wall_s} s ({s.advice_s} s judging rounds); {state}"
               + ("\n" + format_table(rows) if rows else ""))
    return 0


def _model(args: argparse.Namespace, request: Any) -> int:
    from hwnas.nn.onnx_graph import parse_input_shapes
    from hwnas.profilers.onnx_job import ModelSource, profile_model
    from hwnas.store import Store

    src = ModelSource(args.onnx, args.torch, parse_input_shapes(args.input_shape),
                      parse_kv(args.torch_opt, "--torch-opt"))
    model = src.load()  # a bad file is refused before any store is created
    with Store(args.store) as store:
        res = profile_model(store, src, request, per_node=not args.no_per_node, model=model)
    rows = [{k: b.get(k) for k in ("backend", "median_ms", "std_ms", "kernels", "kernel_sum_ms", "skipped", "error")}
            for b in res["backends"]]
    emit(res, as_json=args.json, table=f"{res['model']}: graph {res['hash']} ({res['nodes']} nodes) on "
                                       f"{res['device']} ({res['device_fingerprint']}) in {res['wall_s']} s -> "
                                       f"{res['store']}\n" + format_table(rows))
    return 0
