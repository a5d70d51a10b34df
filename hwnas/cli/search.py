"""Search subcommands: search, sample, random-sample, eval-arch, derive, gen-config.

Parse, call one function of :mod:`hwnas.search.api`, render with :mod:`hwnas.ui`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hwnas.cli.common import add_device, add_parser, finite, names, non_empty, non_negative, positive
from hwnas.ui import emit, format_table


def _perf_rows(rows: list[dict[str, Any]]) -> str:
    return format_table(rows) if rows else "(none)"


def _cmd_search(args: argparse.Namespace) -> int:
    from hwnas.search.api import SearchOverrides, run_search

    overrides = SearchOverrides(objective=args.objective, budget=args.budget_ms, steps=args.steps,
                                ray_address=args.ray_address)
    if args.config is None:
        args.config = _card_config(args)
    if _is_detection(args.config):  # a detection config (head: section) runs the detection flow
        from hwnas.cli.detect import from_search

        return from_search(args)
    out = run_search(args.config, overrides, run_dir=args.run_dir, restart=args.restart, device=args.device,
                     nproc=args.nproc)
    if out.get("rank", 0):
        return 0  # torchrun: rank 0 reports
    lines = [f"{out['rollouts']} rollouts in {out['steps']} steps, {out['seconds']:.1f}s; "
             f"{out['feasible']} feasible" + (f"; {out['queries']} distinct table queries" if "queries" in out else "")
             + (f" (resumed at step {out['resumed_at']})" if out["resumed_at"] else "")]
    if out.get("best"):
        b = out["best"]
        lines.append(f"best: {b['arch_str']}  reward {b['reward']:.4g}  " +
                     "  ".join(f"{k} {v:.4g}" for k, v in b["perfs"].items()))
    rows = [{"arch": p["arch_str"], **p["perfs"], "reward": p["reward"]} for p in out["pareto"]]
    lines += [f"Pareto set ({len(rows)}):", _perf_rows(rows)]
    if out.get("run_dir"):
        files = sorted(f.name for f in Path(out["run_dir"]).iterdir() if f.suffix in (".yaml", ".csv", ".png"))
        lines.append(f"run dir: {out['run_dir']} ({', '.join(files)})")
        lines.append(f"next: hwnas derive {out['run_dir']}   (then: hwnas gen-config --final {out['run_dir']}; "
                     f"watch runs with: hwnas dashboard)")
    emit(out, as_json=args.json, table="\n".join(lines))
    return 0


def _is_detection(config: str) -> bool:
    """Whether the config has the detection flow's ``head:`` section (an unreadable file
    is left for the search to report)."""
    from hwnas.cli.detect import is_detection_config
    from hwnas.errors import HwnasError
    from hwnas.yamlio import read_yaml

    try:
        return is_detection_config(read_yaml(config))
    except HwnasError:
        return False


def _card_config(args: argparse.Namespace) -> str:
    """The card's ``hwnas search --objective latency`` with no config: write the embedded
    default (hwnas.search.card) into the run folder, say what it runs, and run that file."""
    from hwnas.search import card

    metric = args.objective or "latency"
    args.run_dir = args.run_dir or f"{card.RUN_PREFIX}{metric}"
    path = Path(args.run_dir) / "search.yaml"
    what = card.write_default_config(path, metric)
    print(f"no config: running the default search (mbv2 on digits, evolution, 2 epochs per candidate) with {what}; "
          f"config written to {path} (edit it and run: hwnas search {path} --restart)", file=sys.stderr)
    return str(path)


def _cmd_sample(args: argparse.Namespace) -> int:
    from hwnas.search.api import sample_archs

    rows = sample_archs(args.config, space=args.space, n=args.n, seed=args.seed, device=args.device)
    emit(rows, as_json=args.json, table=_perf_rows(rows))
    return 0


def _cmd_random_sample(args: argparse.Namespace) -> int:
    from hwnas.search.api import evaluate_archs

    rows = sorted(evaluate_archs(args.config, n=args.n, device=args.device), key=lambda r: -(r["reward"] or float("-inf")))
    emit(rows, as_json=args.json, table=_perf_rows(rows))
    return 0


def _cmd_eval_arch(args: argparse.Namespace) -> int:
    from hwnas.search.api import evaluate_archs

    rows = evaluate_archs(args.config, args.arch, load=args.load, device=args.device)
    emit(rows, as_json=args.json, table=_perf_rows(rows))
    return 0


def _cmd_derive(args: argparse.Namespace) -> int:
    from hwnas.search.api import derive_archs

    best = derive_archs(args.run_dir, top=args.top, out=args.out, source=args.source)
    rows = [{"arch": b["arch_str"], **b["perfs"], "reward": b["reward"],
             **({"score": b["score"]} if "score" in b else {})} for b in best]
    where = args.out or str(Path(args.run_dir) / "best.yaml")
    emit(best, as_json=args.json, table=_perf_rows(rows) + f"\nwrote {len(best)} architecture(s) to {where}")
    return 0


def _cmd_gen_config(args: argparse.Namespace) -> int:
    from hwnas.config import SECTIONS
    from hwnas.search.genconfig import write_config

    if args.final:
        from hwnas.search.genfinal import write_final

        res = write_final(args.final, config=args.config, rank=args.rank, out=args.out)
        if res["config"] is None and not args.json:
            sys.stdout.write(res["text"])
        else:
            emit({k: v for k, v in res.items() if k != "text"}, as_json=args.json,
                 table=f"wrote {res['config']} and {res['arch']} ({res['arch_str']})\nnext: {res['train']}")
        return 0
    choices = {s: getattr(args, s) for s in SECTIONS}
    text = write_config(choices, seed=args.seed, out=args.out)
    if args.out:
        emit({"path": args.out}, as_json=args.json, table=f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def add_commands(sub: Any) -> None:
    s = add_parser(sub, "search", help="run (or resume) an architecture search from a YAML config",
                   example="hwnas search configs/search-mbv2-digits.yaml --objective latency --budget-ms 2\n"
                           "hwnas search configs/search-mbv2-async.yaml --ray-address 10.0.0.5:6379\n"
                           "hwnas search configs/search-nb201-table.yaml --run-dir runs/nb201 --steps 50")
    s.add_argument("config", nargs="?", help="run config (YAML); default: the embedded default search of "
                                             "hwnas.search.card, written into the run dir")
    s.add_argument("--objective", choices=("latency", "energy"), help="hardware metric (overrides the config)")
    s.add_argument("--budget-ms", type=finite, help="hardware budget: the hardware objective becomes a constraint")
    s.add_argument("--run-dir", help="output / checkpoint folder (default: run.dir of the config, or runs/NAME)")
    s.add_argument("--steps", type=positive, help="controller steps (overrides trainer.steps)")
    s.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in the run dir")
    add_device(s)
    s.add_argument("--nproc", type=positive, default=1,
                   help="processes: DDP ranks for shared-weight training (gloo on CPU, nccl on GPU); with tune, "
                        "predictor or table evaluators N workers that each evaluate a share of the candidates "
                        "(default: 1)")
    s.add_argument("--ray-address", metavar="HOST:PORT",
                   help="trainer async: join this Ray cluster instead of starting a local instance")
    s.set_defaults(func=_cmd_search)
    _add_sampling(sub)
    _add_derive(sub)
    _add_gen_config(sub)


def _add_sampling(sub: Any) -> None:
    p = add_parser(sub, "sample", help="sample architectures from a config's controller, a trained run or a space",
                   example="hwnas sample --space nb201 -n 5\nhwnas sample configs/search-mbv2-digits.yaml -n 3 --json\n"
                           "hwnas sample runs/nb201-predictor -n 5   # the trained controller of a search run")
    p.add_argument("config", nargs="?", help="run config (YAML), or a search run directory; or use --space")
    p.add_argument("--space", help="search space name (uniform sampling, default options)")
    p.add_argument("-n", type=positive, default=5, help="how many (default: %(default)s)")
    p.add_argument("--seed", type=non_negative, default=0)
    add_device(p)
    p.set_defaults(func=_cmd_sample)

    r = add_parser(sub, "random-sample", help="evaluate N random architectures with a config's evaluator",
                   example="hwnas random-sample configs/search-nb201-table.yaml -n 20")
    r.add_argument("config", help="run config (YAML)")
    r.add_argument("-n", type=positive, default=10, help="how many (default: %(default)s)")
    add_device(r)
    r.set_defaults(func=_cmd_random_sample)

    e = add_parser(sub, "eval-arch", help="evaluate given architectures with a config's evaluator",
                   example="hwnas eval-arch configs/search-nb201-table.yaml --arch "
                           "'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|'\n"
                           "hwnas eval-arch my-mepa.yaml --load runs/my-mepa --arch ARCH   # trained supernet weights")
    e.add_argument("config", help="run config (YAML)")
    e.add_argument("--arch", action="append", required=True, type=non_empty, help="architecture string (repeatable)")
    e.add_argument("--load", metavar="RUN_DIR", help="score with the trained shared weights (supernet) of a search run")
    add_device(e)
    e.set_defaults(func=_cmd_eval_arch)


def _add_derive(sub: Any) -> None:
    d = add_parser(sub, "derive", help="best feasible architectures of a search run, as YAML",
                   example="hwnas derive runs/search-mbv2-digits --top 3 --out best.yaml\n"
                           "hwnas derive runs/darts    # a differentiable search: its derived genotype\n"
                           "hwnas derive runs/nb201-predictor --from controller --top 5",
                   description="Write the best feasible distinct architectures of a search run as YAML. For a "
                               "differentiable search (DARTS, GDAS, SNAS, PC-DARTS, FBNet) it writes the one "
                               "architecture the final architecture weights derive to (DARTS: per node the two "
                               "strongest non-none inputs), with the weights.")
    d.add_argument("run_dir", help="run directory of `hwnas search`")
    d.add_argument("--from", dest="source", choices=("history", "controller"), default="history",
                   help="history: best evaluated rollouts; controller: what the trained controller ranks highest "
                        "(default: %(default)s)")
    d.add_argument("--top", type=positive, default=5, help="how many (default: %(default)s)")
    d.add_argument("--out", help="YAML file (default: RUN_DIR/best.yaml)")
    d.set_defaults(func=_cmd_derive)


def _add_gen_config(sub: Any) -> None:
    g = add_parser(sub, "gen-config", help="write a complete, commented default config for chosen components",
                   example="hwnas gen-config --dataset digits --search-space mbv2 --controller evolution "
                           "--out my-search.yaml\n"
                           "hwnas gen-config --final runs/card-latency   # final training of the run's best\n"
                           "hwnas gen-config --final best.yaml --config my-search.yaml --out final.yaml")
    from hwnas.config import SECTIONS
    from hwnas.search.genconfig import DEFAULT_CHOICES

    for section, role in SECTIONS.items():
        g.add_argument(f"--{section.replace('_', '-')}", dest=section, choices=names(role),
                       metavar="NAME", help=f"{role} ({', '.join(names(role))}; default: "
                                            f"{DEFAULT_CHOICES.get(section)} or what the others need)")
    g.add_argument("--seed", type=non_negative, default=0)
    g.add_argument("--final", metavar="RUN_DIR|ARCH",
                   help="instead: the final-training config of a run's derived architecture (best.yaml, "
                        "genotype.yaml or its best rollout), or of an architecture file with --config; "
                        "written to RUN_DIR/final.yaml (or --out) with the architecture beside it")
    g.add_argument("--config", help="--final ARCH: the search config the architecture was derived with")
    g.add_argument("--rank", type=non_negative, default=0, help="--final: which derived architecture (0 = best)")
    g.add_argument("--out", help="YAML path (default: stdout; --final RUN_DIR: RUN_DIR/final.yaml)")
    g.set_defaults(func=_cmd_gen_config)
