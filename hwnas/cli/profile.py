"""``hwnas profile``: measure a space's primitives (and sampled networks) into the store.

Parsing and rendering only; the work is :func:`hwnas.profilers.api.profile_space` and
:func:`hwnas.profilers.api.export_space_bundle`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from hwnas.cli.common import add_parser, add_store, comma_list, finite, names, non_negative, positive
from hwnas.config import parse_kv
from hwnas.profilers.timing import TimingProtocol
from hwnas.store import DEFAULT_STORE
from hwnas.ui import emit, format_table


def _protocol(args: argparse.Namespace) -> Any:
    return TimingProtocol(warmup=args.warmup, min_repeats=args.min_repeats, max_repeats=args.max_repeats,
                          min_time_ms=args.min_time_ms, threads=args.threads, batch=args.batch,
                          time_budget_s=args.time_budget, sessions=args.sessions, estimator=args.estimator)


def _request(args: argparse.Namespace) -> Any:
    """The one typed request every profiling job reads (see hwnas.profilers.request)."""
    from hwnas.profilers.api import expand_backends
    from hwnas.profilers.request import ProfileRequest

    return ProfileRequest(backends=tuple(expand_backends(args.backend)), device=args.device, protocol=_protocol(args),
                          timeout_s=args.timeout, networks=args.kernels or args.networks, seed=args.seed,
                          retry_failed=args.retry_failed, retry_flagged=args.retry_flagged,
                          deadline_s=args.time_limit, tune_trials=args.tune_trials, gpu_index=args.gpu_index,
                          ray_address=args.ray_address, device_resource=args.device_resource)


def _cmd_profile(args: argparse.Namespace) -> int:
    from hwnas.cli import profile_any
    from hwnas.errors import ConfigError
    from hwnas.profilers import api

    if args.detector:  # the detector's primitives (backbone + SSDLite head): glue at the edge
        from hwnas.cli.detect import profile_detector

        return profile_detector(args, _request)
    if profile_any.wants(args):
        args.networks = args.networks or 0
        return profile_any.run(args, _request(args))
    card = not args.space and not args.space_opt
    if card:  # the card's `hwnas profile --device cpu`: the default space of hwnas.search.card
        from hwnas.search import card as card_defaults

        args.space, args.space_opt = card_defaults.SPACE, card_defaults.space_args()[1::2]
        args.networks = card_defaults.NETWORKS if args.networks is None else args.networks
        print(f"no --space: profiling the default space {args.space} ({', '.join(args.space_opt)}) with "
              f"{args.networks} networks -> {args.store}", file=sys.stderr)
    if not args.space:
        raise ConfigError("give --space NAME (a search space), --onnx FILE, --torch MODULE:FACTORY, --kernels N "
                          "or --fusion-rules")
    args.networks = args.networks or 0
    request = _request(args)
    space_opts = parse_kv(args.space_opt, "--space-opt")
    if args.export_only:
        res = api.export_space_bundle(args.space, space_opts, args.export_only, protocol=request.protocol,
                                      networks=request.networks, seed=request.seed)
        emit(res, as_json=args.json, table=f"wrote {res['items']} items ({res['primitives']} primitives, "
                                           f"{res['networks']} networks) to {res['dir']}\n"
                                           f"run there: python run_bundle.py --device NAME")
        return 0
    summary = api.profile_space(args.space, space_opts, args.store, request)
    head = (f"{summary.space}: {summary.n_primitives} primitives, {summary.n_networks} networks on "
            f"{summary.device} ({summary.device_fingerprint}) in {summary.wall_s:.1f} s -> {summary.store}")
    emit(summary.to_dict(), as_json=args.json, table=head + "\n" + format_table(
        summary.rows(), ["backend", "primitives", "networks", "blocks", "skipped", "failed", "flagged",
                         "median_overhead_s"]))
    for line in summary.warnings():
        print(line, file=sys.stderr)
    if not args.json:
        nxt = "hwnas fit-cost" if args.store == DEFAULT_STORE else f"hwnas fit-cost --store {args.store}"
        print(f"next: {nxt}" + ("   (then: hwnas search --objective latency)" if card else ""))
    return 0


def add_commands(sub: Any) -> None:
    p = add_parser(
        sub, "profile", help="measure a search space's primitives (and networks), any ONNX/torch model, or "
                             "kernels into the cost store",
        example="hwnas profile --space mbv2 --device cpu --backend onnxruntime --networks 100\n"
                "hwnas profile --space mbv2 --networks 100 --retry-failed --retry-flagged\n"
                "hwnas profile --space nb201 --backend all --store nb201.sqlite --threads 2\n"
                "hwnas profile --space mbv2 --space-opt resolution=128 --export-only bundle/\n"
                "hwnas profile --space mbv2 --device gpu --gpu-index 1 --backend onnxruntime,torch\n"
                "hwnas profile --space mbv2 --ray-address 10.0.0.5:6379 --device-resource jetson\n"
                "hwnas profile --onnx model.onnx --input-shape input=1x3x224x224 --store s.sqlite\n"
                "hwnas profile --torch hwnas.zoo:mobilenet_v2 --torch-opt width=0.5 --store s.sqlite\n"
                "hwnas profile --kernels 600 --time-limit 840 --store kernels.sqlite",
        description="Measure every unique primitive of a search space, and optionally N sampled networks end to "
                    "end and block by block, on one or more backends. Resumable: a rerun skips what the store "
                    "already holds for the same device and settings.")
    p.add_argument("--space", help=f"search space ({', '.join(names('search_space'))}; default: mbv2 on digits, hwnas.search.card)")
    p.add_argument("--space-opt", action="append", metavar="KEY=VALUE", help="space option (repeatable)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="where to run (default: %(default)s)")
    p.add_argument("--backend", action="append", metavar="NAME", type=comma_list,
                   help=f"backend ({', '.join(names('backend'))} or all); repeatable; default onnxruntime")
    p.add_argument("--networks", type=non_negative, default=None, help="also measure N sampled networks (default: 0; 12 with the default space)")
    add_store(p)
    p.add_argument("--threads", type=positive, default=1, help="threads per inference (default: %(default)s)")
    p.add_argument("--batch", type=positive, default=1, help="batch size (default: %(default)s)")
    p.add_argument("--tune-trials", type=non_negative, default=0,
                   help="tvm: MetaSchedule trials per item (default 0 = untuned); database next to the store")
    p.add_argument("--seed", type=non_negative, default=0, help="seed for network sampling (default: %(default)s)")
    p.add_argument("--timeout", type=finite, default=300.0,
                   help="seconds per item before it is recorded as failed; at least sessions x time budget")
    p.add_argument("--retry-failed", action="store_true",
                   help="re-measure items whose newest measurement failed (by default a rerun skips them)")
    p.add_argument("--retry-flagged", action="store_true",
                   help="re-measure items whose newest measurement was flagged as disturbed by other load")
    p.add_argument("--export-only", metavar="DIR", help="write an offline bundle (ONNX + manifest) instead")
    p.add_argument("--gpu-index", type=non_negative, default=0,
                   help="--device gpu: which GPU to time on and read NVML energy from (default: %(default)s)")
    f = p.add_argument_group("device farm (Ray; pip install 'hwnas[ray]')")
    f.add_argument("--ray-address", metavar="HOST:PORT", help="Ray cluster whose nodes run the measurements")
    f.add_argument("--device-resource", metavar="NAME",
                   help="custom Ray resource naming the farm's device; each item runs on a node that has it, "
                        "results stream back to this process (the store's only writer)")
    t = p.add_argument_group("timing protocol (defaults: hwnas.profilers.timing.TimingProtocol)")
    d = TimingProtocol()
    t.add_argument("--warmup", type=non_negative, default=d.warmup, help="untimed runs first (default: %(default)s)")
    t.add_argument("--min-repeats", type=positive, default=d.min_repeats, help="default: %(default)s")
    t.add_argument("--max-repeats", type=positive, default=d.max_repeats, help="default: %(default)s")
    t.add_argument("--min-time-ms", type=finite, default=d.min_time_ms,
                   help="minimum duration of one repeat (default: %(default)s)")
    t.add_argument("--time-budget", type=finite, default=d.time_budget_s,
                   help="seconds per item before stopping repeats (default: %(default)s)")
    t.add_argument("--sessions", type=positive, default=d.sessions,
                   help="independent sessions per item, samples pooled; %(default)s (default) outvotes one bad session")
    t.add_argument("--estimator", default=d.estimator,
                   help=f"how the stored latency is made from the samples ({', '.join(names('estimator'))}; "
                        "default %(default)s: thread CPU time, robust to other load)")
    from hwnas.cli import profile_any

    profile_any.add_arguments(p)
    p.set_defaults(func=_cmd_profile)
