"""``hwnas fit-cost`` and ``hwnas predict``: parse, call the library, render.

Data loading, the default model choice and fitting live in :mod:`hwnas.cost_models.api`.
"""
from __future__ import annotations

import argparse
from typing import Any

from hwnas.cli.common import (
    add_parser,
    comma_list,
    finite,
    local_path,
    names,
    non_empty,
    non_negative,
    positive,
    positive_finite,
)
from hwnas.config import parse_kv
from hwnas.ui import emit, format_table


def _data_request(args: argparse.Namespace) -> Any:
    """Where ``fit-cost`` reads its data (a store, or a whole-network table), built once."""
    from hwnas.cost_models.data import DataRequest

    return DataRequest(store=local_path(args.store, "store"), device=args.device, backend=args.backend, dataset=args.dataset,
                       space=args.space, space_options=parse_kv(args.space_opt, "--space-opt"), target=args.target,
                       min_value=args.min_value)


def _cmd_fit_transfer(args: argparse.Namespace) -> int:
    """``fit-cost --transfer-from``: few-shot transfer to a new device (one library call)."""
    from hwnas.cost_models.transfer_model import BaseRef, transfer_from

    base = BaseRef(local_path(args.transfer_from, "cost_model"), args.transfer_from)  # type: ignore[arg-type]
    if args.plan is not None:
        return _cmd_plan(args, base)
    if args.arch_file or args.candidates:
        from hwnas.errors import ConfigError

        raise ConfigError("--arch-file and --candidates choose the candidates of --plan K; give --plan")
    rep = transfer_from(base, _data_request(args), out=args.out)
    loo = rep["loo"]
    like = ", ".join(f"{d} {w:.2f}" for d, w in rep["similar_devices"] if w >= 0.01) or "a mix of all sources"
    lines = [f"transfer from {rep['base']} ({rep['space']}): {rep['shots']} measured networks; behaves like: {like}",
             f"leave-one-out on the shots: MAPE {100 * loo['mape']:.1f}%, within ±10% {100 * loo['within_10']:.0f}%,"
             f" worst {100 * loo['max_rel_error']:.0f}%" + (f", Spearman {loo['spearman']:.3f}" if "spearman" in loo
                                                            else ""),
             f"model folder: {rep['out']}" if rep.get("out") else "no --out: nothing written"]
    emit(rep, as_json=args.json, table="\n".join(lines))
    return 0


def _cmd_plan(args: argparse.Namespace, base: Any) -> int:
    """``fit-cost --transfer-from BASE --plan K``: the K networks to measure on a new device."""
    from hwnas.cost_models.plan import PlanRequest, plan_transfer

    req = PlanRequest(k=args.plan, space=args.space, space_options=parse_kv(args.space_opt, "--space-opt"),
                      dataset=args.dataset, arch_file=args.arch_file,
                      candidates=args.candidates, seed=args.seed, target=args.target, out=args.out or "hwnas-plan")
    rep = plan_transfer(base, req)
    head = (f"plan from {rep['base']} ({rep['space']}): {rep['k']} of {rep['candidates']} candidates ({rep['source']}), "
            f"greedy D-optimal in the base's outputs; written to {rep['out']}/plan.txt, plan.json, plan.csv")
    cols = ["rank", "arch", "gain", "source_ms_min", "source_ms_max"]
    emit(rep, as_json=args.json, table=head + "\n" + format_table(rep["plan"], cols, {"gain": "info gain (nats)"})
         + f"\nnext: measure them, fill {rep['out']}/plan.csv, then hwnas fit-cost --transfer-from {rep['base']} "
           f"--dataset {rep['out']}/plan.csv --target {args.target or 'latency_ms'}")
    return 0


def _cmd_fit_cost(args: argparse.Namespace) -> int:
    from hwnas.cost_models import api

    if args.model == "kernel":
        from hwnas.cli.predict_any import cmd_fit_kernel

        return cmd_fit_kernel(args)
    from hwnas.cost_models.metrics import REPORT_HEADERS

    if args.transfer_from:
        return _cmd_fit_transfer(args)
    if args.plan is not None or args.arch_file or args.candidates:
        from hwnas.errors import ConfigError

        raise ConfigError("--plan, --arch-file and --candidates plan shots for few-shot transfer: give --transfer-from "
                          "BASE (e.g. asset:nb201-base)")

    card = _card_defaults(args)
    d = api.load_data(_data_request(args), unit=args.unit, exclude_flagged=args.exclude_flagged)
    rep = api.fit_cost(d, args.model, unit=args.unit, test_frac=args.test_frac, seed=args.seed, out=args.out,
                       train=args.train)
    head = (f"{d.summary.get('source')}: {d.target} ({d.unit or 'as given'}), {rep['n_train']} train / "
            f"{rep['n_test']} held-out networks" + (f"; models in {args.out}" if args.out else ""))
    cols = ["model", "rmse", "rel_rmse", "mape", "within_5", "within_10", "kendall_tau", "spearman"]
    if any("vs_lut" in r for r in rep["rows"]):
        cols.append("vs_lut")
    emit(rep, as_json=args.json, table=head + "\n" + format_table(rep["rows"], cols, REPORT_HEADERS))
    if card and not args.json:
        print("next: hwnas search --objective latency")
    return 0


def _card_defaults(args: argparse.Namespace) -> bool:
    """The card's bare ``hwnas fit-cost``: the default store, its only device/backend (or a
    one-line error listing them) and models written to hwnas.search.card.COST_DIR, where
    ``hwnas search`` looks for them. True when the store was defaulted."""
    import sys

    from hwnas.search import card
    from hwnas.store import DEFAULT_STORE

    defaulted = not args.store and not args.dataset
    if defaulted:
        args.store = DEFAULT_STORE
        args.out = args.out or card.COST_DIR
        args.model = args.model or card.MODELS
    if args.store and not args.dataset and args.unit == "network" and (not args.device or not args.backend):
        fp, backend = card.measured_pair(local_path(args.store, "store") or args.store)
        args.device, args.backend = args.device or fp, args.backend or backend
        print(f"fitting on {args.store}: device {args.device[:16]}, backend {args.backend}"
              + (f" -> {args.out}" if args.out else ""), file=sys.stderr)
    return defaulted


def _cmd_predict(args: argparse.Namespace) -> int:
    from hwnas.cost_models import api
    from hwnas.errors import ConfigError

    if args.onnx or args.torch:
        from hwnas.cli.predict_any import cmd_predict

        return cmd_predict(args)
    if not args.model:
        raise ConfigError("give --model DIR (a cost model folder), or --onnx FILE --predictor DIR")

    res = api.predict(args.model, space=args.space, space_options=parse_kv(args.space_opt, "--space-opt"),
                      archs=args.arch or (), networks=args.networks)
    unit = res["unit"]
    head = f"{res['model']}: {res['target']} in {unit} of {res['device']} ({res['estimator']})\n"
    emit(res, as_json=args.json, table=head + format_table(res["predictions"], ["network", "prediction"],
                                                            {"prediction": f"prediction ({unit or '?'})"}))
    return 0


def _add_plan_arguments(f: argparse.ArgumentParser) -> None:
    """``--plan K`` and where its candidates come from (few-shot transfer's shot planning)."""
    f.add_argument("--plan", type=positive, metavar="K",
                   help="with --transfer-from: write the K architectures to measure on a new device (greedy "
                        "D-optimal in the base's outputs) to --out (default hwnas-plan/): plan.txt, plan.json, "
                        "plan.csv; candidates: --dataset rows, --arch-file, or --candidates N sampled from --space")
    f.add_argument("--arch-file", help="--plan: candidate architecture strings, one a line")
    f.add_argument("--candidates", type=positive, help="--plan: sample N candidates from the space (default 2000), "
                                                       "or a seeded subset of N of --dataset/--arch-file")


def add_commands(sub: Any) -> None:
    f = add_parser(sub, "fit-cost", help="fit cost models on measured networks and report held-out accuracy",
                   example="hwnas fit-cost --store hwnas-store.sqlite --device cpu --backend onnxruntime "
                           "--model all --out runs/costmodels\n"
                           "hwnas fit-cost --dataset nb201_latency.csv --space nb201 --target gold_6226_ms "
                           "--train 900 --model gnn\n"
                           "hwnas fit-cost --store fpga.sqlite --device zcu102-dpu-b4096 --backend awnas "
                           "--unit primitive --target energy\n"
                           "hwnas fit-cost --model kernel --store kernels.sqlite --device cpu --out runs/kernel\n"
                           "hwnas fit-cost --transfer-from asset:nb201-base --dataset my10.csv --target my_ms "
                           "--out models/mydev")
    f.add_argument("--store", help="cost store with network and primitive measurements (or asset:NAME; default "
                                   "hwnas-store.sqlite, then --out defaults to hwnas-cost/)")
    f.add_argument("--transfer-from", metavar="BASE",
                   help="few-shot transfer: a multi-device base (asset:nb201-base, asset:fbnet-base or a "
                        "multi_device model folder) adapted to the k >= 3 networks of --dataset/--target or "
                        "--store/--device/--backend; --json reports the leave-one-out error on them")
    _add_plan_arguments(f)
    f.add_argument("--device", help="device id, fingerprint or name in the store (default: its only one)")
    f.add_argument("--backend", help="backend of the measurements, e.g. onnxruntime (default: the store's only one)")
    f.add_argument("--dataset", help="whole-network CSV (one architecture per row, one column per device)")
    f.add_argument("--space", help="search space of the dataset's architectures (nb201, fbnet)")
    f.add_argument("--space-opt", action="append", metavar="K=V", help="search-space option (repeatable)")
    f.add_argument("--target", help="latency|energy with --store (default latency); a column with --dataset")
    f.add_argument("--model", default=None, type=comma_list,
                   help=f"all, or a comma list of {','.join(names('cost_model'))} (default: all; mlp for --dataset); "
                        "kernel: kernel predictors from `hwnas profile --kernels` data (any model, no networks)")
    f.add_argument("--out", help="folder for one model folder per model, report.json and PNGs")
    f.add_argument("--test-frac", type=finite, default=0.3, help="held-out share (default %(default)s)")
    f.add_argument("--train", type=positive, help="train on N random networks, test on all others (overrides "
                   "--test-frac); fitting needs at least 2 networks to train on and 2 held out")
    f.add_argument("--min-value", type=positive_finite, default=0.1,
                   help="--dataset: drop rows whose target is below this, > 0 (default %(default)s)")
    f.add_argument("--seed", type=non_negative, default=0, help="split and model seed (default %(default)s)")
    f.add_argument("--unit", choices=("network", "primitive"), default="network",
                   help="--store: fit on measured networks (default) or on single primitives, for stores "
                        "that hold no networks (e.g. FPGA tables: energy from latency and shape)")
    f.add_argument("--exclude-flagged", action="store_true",
                   help="--store: leave out measurements flagged as disturbed by other load (an older clean "
                        "measurement of the same item is used if there is one)")
    f.set_defaults(func=_cmd_fit_cost)

    p = add_parser(sub, "predict", help="predict latency/energy of networks with a saved cost model",
                   example="hwnas predict --model runs/costmodels/mlp --space mbv2 "
                           "--arch 'd2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3'\n"
                           "hwnas predict --model runs/costmodels/gnn --networks nets.jsonl --json\n"
                           "hwnas predict --onnx model.onnx --predictor runs/kernel --top 10")
    p.add_argument("--model", help="a model folder written by fit-cost, or asset:NAME")
    p.add_argument("--arch", action="append", type=non_empty, help="architecture string of --space (repeatable)")
    p.add_argument("--space", help="search space of --arch / arch-string files")
    p.add_argument("--space-opt", action="append", metavar="K=V", help="search-space option (repeatable)")
    p.add_argument("--networks", help="JSON list / JSON lines of NetworkSpec dicts, or a text file of arch strings")
    from hwnas.cli.predict_any import add_predict_arguments

    add_predict_arguments(p)
    p.set_defaults(func=_cmd_predict)
