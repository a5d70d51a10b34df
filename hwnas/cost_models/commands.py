"""``hwnas fit-cost`` and ``hwnas predict``: parse, call the library, render.

Kept free of logic (see :mod:`hwnas.cli`): data loading, fitting and scoring live in
:mod:`hwnas.cost_models.fitting` and :mod:`hwnas.cost_models.data`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hwnas.config import parse_kv
from hwnas.errors import ConfigError, CostModelError
from hwnas.ui import emit, format_table


def _cmd_fit_cost(args: argparse.Namespace) -> int:
    from hwnas.cost_models import data as cdata

    if args.model == "kernel":
        from hwnas.cost_models.anymodel_commands import cmd_fit_kernel

        return cmd_fit_kernel(args)
    from hwnas.cost_models.fitting import fit_and_report
    from hwnas.cost_models.metrics import REPORT_HEADERS

    if args.dataset:
        if not args.space or not args.target or args.target in cdata.TARGETS:
            raise ConfigError("--dataset needs --space and --target COLUMN (a device column, e.g. gold_6226_ms)")
        d = cdata.from_csv(args.dataset, args.space, args.target, min_value=args.min_value,
                           space_options=parse_kv(args.space_opt, "--space-opt"))
    elif args.store:
        if not args.device or not args.backend:
            raise ConfigError("--store needs --device and --backend")
        from hwnas.store import Store

        with Store(args.store, create=False) as st:
            if args.unit == "primitive":
                d = cdata.from_store_primitives(st, args.device, args.backend, args.target or "latency")
            else:
                d = cdata.from_store(st, args.device, args.backend, args.target or "latency")
    else:
        raise ConfigError("give --store S --device D --backend B, or --dataset FILE --space S --target COLUMN")
    if args.model is not None:
        model = args.model
    elif args.unit == "primitive":
        model = "linear1,mlp,gnn" if d.table is not None else "mlp,gnn"
    else:
        model = "all" if d.table is not None else "mlp"
    rep = fit_and_report(d, model, test_frac=args.test_frac, seed=args.seed, out=args.out, train=args.train)
    head = (f"{d.summary.get('source')}: {d.target} ({d.unit or 'as given'}), {rep['n_train']} train / "
            f"{rep['n_test']} held-out networks" + (f"; models in {args.out}" if args.out else ""))
    cols = ["model", "rmse", "rel_rmse", "mape", "within_5", "within_10", "kendall_tau", "spearman"]
    if any("vs_lut" in r for r in rep["rows"]):
        cols.append("vs_lut")
    emit(rep, as_json=args.json, table=head + "\n" + format_table(rep["rows"], cols, REPORT_HEADERS))
    return 0


def _read_networks(path: str, space: Any) -> list[tuple[str, Any]]:
    """(label, NetworkSpec) from JSON (list or lines) of NetworkSpec dicts, or arch strings."""
    from hwnas.primitives import NetworkSpec

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CostModelError(f"{path}: cannot read ({exc.strerror})") from None
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CostModelError(f"{path}: not valid JSON ({exc})") from None
        nets = [NetworkSpec.from_dict(d) for d in items]
        return [(n.get_meta("arch") or n.hash, n) for n in nets]
    out = []
    for i, line in enumerate(stripped.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                n = NetworkSpec.from_json(line)
            except CostModelError:
                raise
            except Exception as exc:
                raise CostModelError(f"{path}:{i}: {exc}") from None
            out.append((n.get_meta("arch") or n.hash, n))
        else:
            if space is None:
                raise ConfigError(f"{path}:{i}: an architecture string needs --space")
            out.append((line, space.to_network(space.from_str(line))))
    return out


def _cmd_predict(args: argparse.Namespace) -> int:
    from hwnas.cost_models import load_model
    from hwnas.cost_models.data import build_space

    if args.onnx or args.torch:
        from hwnas.cost_models.anymodel_commands import cmd_predict

        return cmd_predict(args)
    if not args.model:
        raise ConfigError("give --model DIR (a cost model folder), or --onnx FILE --predictor DIR")
    model = load_model(args.model)
    space = build_space(args.space, parse_kv(args.space_opt, "--space-opt")) if args.space else None
    items: list[tuple[str, Any]] = []
    if args.networks:
        items += _read_networks(args.networks, space)
    for a in args.arch or []:
        if space is None:
            raise ConfigError("--arch needs --space")
        items.append((a, space.to_network(space.from_str(a))))
    if not items:
        raise ConfigError("give --arch ARCH --space S, or --networks FILE")
    preds = model.predict([n for _, n in items])
    unit = (model.manifest_.get("training") or {}).get("unit", "")
    rows = [{"network": label, "hash": n.hash, "prediction": float(p)} for (label, n), p in zip(items, preds)]
    emit({"model": str(args.model), "unit": unit, "predictions": rows}, as_json=args.json,
         table=format_table(rows, ["network", "prediction"], {"prediction": f"prediction ({unit or '?'})"}))
    return 0


def add_commands(sub: Any) -> None:
    from hwnas.cli import add_parser

    f = add_parser(sub, "fit-cost", help="fit cost models on measured networks and report held-out accuracy",
                   example="hwnas fit-cost --store hwnas-store.sqlite --device cpu --backend onnxruntime "
                           "--model all --out runs/costmodels\n"
                           "hwnas fit-cost --dataset nb201_latency.csv --space nb201 --target gold_6226_ms "
                           "--train 900 --model gnn\n"
                           "hwnas fit-cost --store fpga.sqlite --device zcu102-dpu-b4096 --backend awnas "
                           "--unit primitive --target energy\n"
                           "hwnas fit-cost --model kernel --store kernels.sqlite --device cpu --out runs/kernel")
    f.add_argument("--store", help="cost store with network and primitive measurements")
    f.add_argument("--device", help="device id, fingerprint or name in the store")
    f.add_argument("--backend", help="backend of the measurements (e.g. onnxruntime)")
    f.add_argument("--dataset", help="whole-network CSV (one architecture per row, one column per device)")
    f.add_argument("--space", help="search space of the dataset's architectures (nb201, fbnet)")
    f.add_argument("--space-opt", action="append", metavar="K=V", help="search-space option (repeatable)")
    f.add_argument("--target", help="latency|energy with --store (default latency); a column with --dataset")
    f.add_argument("--model", default=None,
                   help="all, or a comma list of lut,linear1,linear2,mlp,lstm,gnn (default: all; mlp for --dataset); "
                        "kernel: kernel predictors from `hwnas profile --kernels` data (any model, no networks)")
    f.add_argument("--out", help="folder for one model folder per model, report.json and PNGs")
    f.add_argument("--test-frac", type=float, default=0.3, help="held-out share (default %(default)s)")
    f.add_argument("--train", type=int, help="train on N random networks, test on all others (overrides --test-frac)")
    f.add_argument("--min-value", type=float, default=0.1,
                   help="--dataset: drop rows whose target is below this (default %(default)s)")
    f.add_argument("--seed", type=int, default=0, help="split and model seed (default %(default)s)")
    f.add_argument("--unit", choices=("network", "primitive"), default="network",
                   help="--store: fit on measured networks (default) or on single primitives, for stores "
                        "that hold no networks (e.g. FPGA tables: energy from latency and shape)")
    f.set_defaults(func=_cmd_fit_cost)

    p = add_parser(sub, "predict", help="predict latency/energy of networks with a saved cost model",
                   example="hwnas predict --model runs/costmodels/mlp --space mbv2 "
                           "--arch 'd2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3|d2:e3k3,e3k3'\n"
                           "hwnas predict --model runs/costmodels/gnn --networks nets.jsonl --json\n"
                           "hwnas predict --onnx model.onnx --predictor runs/kernel --top 10")
    p.add_argument("--model", help="a model folder written by fit-cost")
    p.add_argument("--arch", action="append", help="architecture string of --space (repeatable)")
    p.add_argument("--space", help="search space of --arch / arch-string files")
    p.add_argument("--space-opt", action="append", metavar="K=V", help="search-space option (repeatable)")
    p.add_argument("--networks", help="JSON list / JSON lines of NetworkSpec dicts, or a text file of arch strings")
    from hwnas.cost_models.anymodel_commands import add_predict_arguments

    add_predict_arguments(p)
    p.set_defaults(func=_cmd_predict)
