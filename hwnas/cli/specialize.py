"""``hwnas specialize``: derive one subnet of a trained supernet per device and budget.

Parsing and rendering only; the work is in :mod:`hwnas.search.ofa.specialize`.
"""
from __future__ import annotations

import argparse
from typing import Any

from hwnas.cli.common import add_device, add_parser, non_negative, positive, positive_finite
from hwnas.ui import emit, format_table, progress


class _Cost(argparse.Action):
    """``--cost`` starts a group; the ``--budget-ms`` values after it belong to it."""

    def __call__(self, parser: Any, ns: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        ns.pairs = [*(ns.pairs or []), (values, [])]


class _Budget(argparse.Action):
    def __call__(self, parser: Any, ns: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        if not ns.pairs:
            parser.error("--budget-ms: give --cost SOURCE before its budgets")
        ns.pairs[-1][1].append(values)


def _cmd_specialize(args: argparse.Namespace) -> int:
    from hwnas.search.ofa.evolve import EvolutionOptions
    from hwnas.search.ofa.specialize import SpecializeRequest, specialize
    from hwnas.search.ofa.targets import read_targets, targets_from_pairs

    if args.targets and args.pairs:
        from hwnas.errors import InputError

        raise InputError("--targets: give either a targets file or --cost/--budget-ms, not both")
    targets = read_targets(args.targets) if args.targets else targets_from_pairs(args.pairs or [])
    evo = EvolutionOptions(population=args.population, generations=args.generations, seed=args.seed)
    req = SpecializeRequest(args.run_dir, targets, out=args.out, predictor=args.predictor, samples=args.samples,
                            holdout=args.holdout, seed=args.seed, evolution=evo, device=args.device,
                            margin=args.margin)
    bar = progress(desc="score subnets", unit="subnet", total=None if args.predictor else args.samples)

    def on_scored(n: int) -> None:
        bar.update(n - bar.n)

    try:
        summary = specialize(req, on_scored=on_scored)
    finally:
        bar.close()
    emit(summary, as_json=args.json, table=_table(summary))
    return 0


def _table(summary: dict[str, Any]) -> str:
    rows = summary["targets"]
    cols = ["device"] + [k for k in rows[0] if k.startswith(("budget_", "predicted_"))] + ["seconds", "arch_str"]
    metrics = summary["predictor"].get("metrics") or {}
    pm = metrics.get("ensemble") or metrics.get("mlp") or {}
    noise = metrics.get("label_noise") or {}
    head = (f"accuracy predictor: {summary['predictor'].get('predictor')} (held-out RMSE {pm.get('rmse', float('nan')):.4f},"
            f" Kendall tau {pm.get('kendall_tau', float('nan')):.3f}, n={pm.get('n', '?')}"
            + (f"; tau between two scorings of the same subnets {noise['kendall_tau_between_scorings']:.3f}"
               if noise else "") + ")")
    return "\n".join([head, format_table(rows, cols),
                      f"wrote {summary['arch_file']} (train: hwnas train {summary['run_dir']}/config.yaml --arch "
                      f"{summary['arch_file']} --rank N --from-supernet {summary['run_dir']}), {summary['plot']}"])


def add_commands(sub: Any) -> None:
    """Add ``specialize`` to the hwnas command line."""
    p = add_parser(sub, "specialize", help="derive a subnet of a trained supernet per device and latency budget",
                   example="hwnas specialize runs/mbv3-ps --cost runs/costmodels/lstm --budget-ms 0.05 "
                           "--budget-ms 0.08\n"
                           "hwnas specialize runs/mbv3-ps --cost store=s.sqlite,device=cpu,backend=onnxruntime "
                           "--budget-ms 1.5 --cost asset:NAME --budget-ms 3\n"
                           "hwnas specialize runs/mbv3-ps --targets targets.yaml --predictor runs/mbv3-ps/"
                           "specialize/acc_predictor --json",
                   description="Once-for-all specialisation: sample and score subnets of the supernet run "
                               "(inherited weights, BN recalibrated, valid split), fit an accuracy predictor "
                               "(or load one with --predictor), then for every target run an evolutionary "
                               "search over the predictor under that device's cost source and budget. "
                               "Writes specialized.yaml (for hwnas train --from-supernet), specialize.json and "
                               "accuracy_vs_budget.png into --out.")
    p.add_argument("run_dir", help="a supernet search run folder (hwnas search with mbv3_supernet, supernet (mbv2) or nb201_supernet)")
    p.add_argument("--cost", action=_Cost, dest="pairs", metavar="SOURCE",
                   help="cost source: a cost-model folder or asset:NAME, or key=value pairs "
                        "(store=s.sqlite,device=cpu,backend=onnxruntime); repeatable, each followed by its budgets")
    p.add_argument("--budget-ms", action=_Budget, dest="pairs", type=positive_finite, metavar="X",
                   help="a latency budget of the --cost before it (repeatable)")
    p.add_argument("--targets", metavar="FILE", help="YAML file of device -> cost -> budget_ms (see docs)")
    p.add_argument("--predictor", metavar="DIR", help="a saved accuracy predictor (default: fit one, saved in --out)")
    p.add_argument("--samples", type=positive, default=200, help="subnets scored to fit the predictor (default 200)")
    p.add_argument("--holdout", type=float, default=0.25, help="share of scored subnets held out (default 0.25)")
    p.add_argument("--margin", type=float, default=0.0,
                   help="search under budget x (1 - MARGIN), room for the cost source's error (e.g. its held-out "
                        "relative RMSE); default 0")
    p.add_argument("--population", type=positive, default=100, help="evolution population (default 100)")
    p.add_argument("--generations", type=non_negative, default=30, help="evolution generations (default 30)")
    p.add_argument("--seed", type=non_negative, default=0, help="seed of sampling and evolution (default 0)")
    p.add_argument("--out", help="output folder (default: RUN_DIR/specialize)")
    add_device(p)
    p.set_defaults(func=_cmd_specialize)
