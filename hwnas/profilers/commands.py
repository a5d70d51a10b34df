"""``hwnas profile``: measure a space's primitives (and sampled networks) into the store.

Parsing and rendering only; the work is :class:`hwnas.profilers.runner.ProfileJob` and
:func:`hwnas.profilers.offline.export_bundle`.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hwnas.config import build_named, parse_kv

ALL_BACKENDS = ("onnxruntime", "torch", "tvm")


def parse_space_opts(items: list[str] | None) -> dict[str, Any]:
    return parse_kv(items, "--space-opt")


def build_space(name: str, opts: dict[str, Any]) -> Any:
    """A registered search space with validated options."""
    return build_named("search_space", name, opts, f"space {name}")


def backend_list(values: list[str] | None) -> list[str]:
    vals = values or ["onnxruntime"]
    out: list[str] = []
    for v in vals:
        for b in (ALL_BACKENDS if v == "all" else v.split(",")):
            if b and b not in out:
                out.append(b)
    return out


def _protocol(args: argparse.Namespace) -> Any:
    from hwnas.profilers.timing import TimingProtocol

    return TimingProtocol(warmup=args.warmup, min_repeats=args.min_repeats, max_repeats=args.max_repeats,
                          min_time_ms=args.min_time_ms, threads=args.threads, batch=args.batch,
                          time_budget_s=args.time_budget, sessions=args.sessions)


def _cmd_profile(args: argparse.Namespace) -> int:
    from hwnas.errors import ConfigError
    from hwnas.profilers import anymodel_commands
    from hwnas.ui import emit, format_table

    protocol = _protocol(args)
    if anymodel_commands.wants(args):
        return anymodel_commands.run(args, protocol)
    if not args.space:
        raise ConfigError("give --space NAME (a search space), --onnx FILE, --torch MODULE:FACTORY, --kernels N "
                          "or --fusion-rules")
    space = build_space(args.space, parse_space_opts(args.space_opt))
    if args.export_only:
        from hwnas.profilers.offline import export_bundle

        res = export_bundle(space, args.export_only, protocol=protocol, networks=args.networks, seed=args.seed)
        emit(res, as_json=args.json, table=f"wrote {res['items']} items ({res['primitives']} primitives, "
                                           f"{res['networks']} networks) to {res['dir']}\n"
                                           f"run there: python run_bundle.py --device NAME")
        return 0
    from hwnas.profilers.runner import ProfileJob
    from hwnas.store import Store

    backends = backend_list(args.backend)
    tuning_dir = Path(args.store).resolve().parent / (Path(args.store).stem + ".tvm-tuning")
    opts = {"tvm": {"tune_trials": args.tune_trials, "tuning_dir": str(tuning_dir) if args.tune_trials else None}}
    with Store(args.store) as store:
        job = ProfileJob(store, space, backends=backends, device=args.device, protocol=protocol,
                         networks=args.networks, seed=args.seed, timeout_s=args.timeout,
                         backend_options={b: opts[b] for b in backends if b in opts})
        summary = job.run()
    rows = summary.rows()
    head = (f"{summary.space}: {summary.n_primitives} primitives, {summary.n_networks} networks on "
            f"{summary.device} ({summary.device_fingerprint}) in {summary.wall_s:.1f} s -> {summary.store}")
    emit(summary.to_dict(), as_json=args.json, table=head + "\n" + format_table(
        rows, ["backend", "primitives", "networks", "blocks", "skipped", "failed", "median_overhead_s"]))
    return 0


def add_commands(sub: Any) -> None:
    from hwnas.cli import add_parser

    p = add_parser(
        sub, "profile", help="measure a search space's primitives (and networks), any ONNX/torch model, or "
                             "kernels into the cost store",
        example="hwnas profile --space mbv2 --device cpu --backend onnxruntime --networks 100\n"
                "hwnas profile --space nb201 --backend all --store nb201.sqlite --threads 2\n"
                "hwnas profile --space mbv2 --space-opt resolution=128 --export-only bundle/\n"
                "hwnas profile --onnx model.onnx --input-shape input=1x3x224x224 --store s.sqlite\n"
                "hwnas profile --torch hwnas.zoo:mobilenet_v2 --torch-opt width=0.5 --store s.sqlite\n"
                "hwnas profile --kernels 600 --time-limit 840 --store kernels.sqlite",
        description="Measure every unique primitive of a search space, and optionally N sampled networks end to "
                    "end and block by block, on one or more backends. Resumable: a rerun skips what the store "
                    "already holds for the same device and settings.")
    p.add_argument("--space", help="search space name (see `hwnas registry search_space`)")
    p.add_argument("--space-opt", action="append", metavar="KEY=VALUE", help="space option (repeatable)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="where to run (default: %(default)s)")
    p.add_argument("--backend", action="append", metavar="NAME",
                   help=f"backend ({', '.join(ALL_BACKENDS)} or all); repeatable; default onnxruntime")
    p.add_argument("--networks", type=int, default=0, help="also measure N sampled networks (default: 0)")
    p.add_argument("--store", default="hwnas-store.sqlite", help="cost store path (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="threads per inference (default: %(default)s)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default: %(default)s)")
    p.add_argument("--tune-trials", type=int, default=0,
                   help="tvm: MetaSchedule trials per item (default 0 = untuned); database next to the store")
    p.add_argument("--seed", type=int, default=0, help="seed for network sampling (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per item before it is recorded as failed")
    p.add_argument("--export-only", metavar="DIR", help="write an offline bundle (ONNX + manifest) instead")
    t = p.add_argument_group("timing protocol")
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--min-repeats", type=int, default=5)
    t.add_argument("--max-repeats", type=int, default=50)
    t.add_argument("--min-time-ms", type=float, default=2.0, help="minimum duration of one repeat")
    t.add_argument("--time-budget", type=float, default=5.0, help="seconds per item before stopping repeats")
    t.add_argument("--sessions", type=int, default=3,
                   help="independent sessions per item, samples pooled; 3 (default) outvotes one bad session")
    from hwnas.profilers import anymodel_commands

    anymodel_commands.add_arguments(p)
    p.set_defaults(func=_cmd_profile)
