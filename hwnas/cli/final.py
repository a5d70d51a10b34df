"""``hwnas train`` and ``hwnas test``: final training and testing of a derived architecture.

Parsing and rendering only; the work is in :mod:`hwnas.search.final`.
"""
from __future__ import annotations

import argparse
from typing import Any

from hwnas.cli.common import add_device, add_parser, finite, non_negative, positive
from hwnas.ui import emit, format_table, progress


def _cmd_train(args: argparse.Namespace) -> int:
    from hwnas.search import final

    bar = progress(desc="train", unit="epoch")

    def on_epoch(rec: dict[str, Any]) -> None:
        bar.total = rec.get("epochs_total")
        bar.update(1)
        bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k not in ("epoch", "epochs_total")})

    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                 "label_smoothing": args.label_smoothing, "weight_decay": args.weight_decay}
    try:
        summary = final.train_files(args.config, args.arch, rank=args.rank, out=args.out, overrides=overrides,
                                    resume=args.resume, from_supernet=args.from_supernet,
                                    stop_after=args.stop_after, on_epoch=on_epoch, nproc=args.nproc,
                                    device=args.device)
    finally:
        bar.close()
    if summary.get("rank", 0):
        return 0  # torchrun: rank 0 reports
    hist = summary["history"]
    lines = [f"{summary['space']} {summary['arch']}",
             f"{summary['epochs_done']}/{summary['epochs']} epochs; checkpoint {summary['checkpoint']}"]
    if hist:
        lines.append(format_table(hist))
    emit({k: v for k, v in summary.items() if k != "losses"}, as_json=args.json, table="\n".join(lines))
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    from hwnas.search import final

    check = final.LatencyCheck(args.backend, args.threads) if args.profile else None
    res = final.test_files(args.config, args.arch, args.checkpoint, rank=args.rank, profile=check,
                           cost_model=args.cost_model, device=args.device)
    cols = [c for c in ("test_accuracy", "test_loss", "latency_ms", "predicted_latency_ms") if c in res]
    table = f"{res['space']} {res['arch']} (network {res['network_hash']})\n" + format_table([res], cols)
    emit(res, as_json=args.json, table=table)
    return 0


def add_commands(sub: Any) -> None:
    """Add ``train`` and ``test`` to the hwnas command line."""
    t = add_parser(sub, "train", help="train one architecture from scratch (or from supernet weights)",
                   example="hwnas train configs/search.yaml --arch runs/search/best.yaml --out runs/final\n"
                           "hwnas train configs/search.yaml --arch best.yaml --out runs/ddp --nproc 2 --device cpu\n"
                           "hwnas train configs/search.yaml --arch best.yaml --out runs/final --resume\n"
                           "hwnas train configs/search.yaml --arch best.yaml --from-supernet runs/search/supernet.pt",
                   description="Train one architecture with SGD + momentum, cosine LR and label smoothing "
                               "(recipe in the config's run.train section; flags override). A checkpoint is "
                               "written every epoch into --out; --resume continues it exactly.")
    t.add_argument("config", help="run config YAML (dataset, search_space, optional run.train)")
    t.add_argument("--arch", required=True, help="architecture YAML written by hwnas derive")
    t.add_argument("--rank", type=non_negative, default=0, help="which entry of a derive list (0 = best)")
    t.add_argument("--out", help="run folder for checkpoint.pt and summary.json (default: runs/train-<arch>)")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    t.add_argument("--from-supernet", metavar="CKPT",
                   help="start from supernet weights (fine-tune): a search run dir, its checkpoint.json, "
                        "or a torch state dict")
    t.add_argument("--epochs", type=positive, help="override run.train.epochs")
    t.add_argument("--batch-size", type=positive, help="override run.train.batch_size")
    t.add_argument("--lr", type=finite, help="override run.train.lr")
    t.add_argument("--weight-decay", type=finite, help="override run.train.weight_decay")
    t.add_argument("--label-smoothing", type=finite, help="override run.train.label_smoothing")
    t.add_argument("--stop-after", type=positive, metavar="N", help="stop after N epochs of this call (resumable)")
    add_device(t)
    t.add_argument("--nproc", type=positive, default=1,
                   help="DistributedDataParallel processes (gloo on CPU, nccl on GPU, one GPU each; "
                        "or start under torchrun); default 1")
    t.set_defaults(func=_cmd_train)

    s = add_parser(sub, "test", help="test-split accuracy of a trained architecture (and its latency)",
                   example="hwnas test configs/search.yaml --arch best.yaml --checkpoint runs/final/checkpoint.pt\n"
                           "hwnas test configs/search.yaml --arch best.yaml --checkpoint runs/final/checkpoint.pt "
                           "--profile --cost-model models/mlp",
                   description="Report test-split accuracy; with --profile also the measured latency of the "
                               "network (batch 1) and, with --cost-model, the model's prediction beside it.")
    s.add_argument("config", help="run config YAML (dataset, search_space)")
    s.add_argument("--arch", required=True, help="architecture YAML written by hwnas derive")
    s.add_argument("--rank", type=non_negative, default=0, help="which entry of a derive list (0 = best)")
    s.add_argument("--checkpoint", required=True, help="checkpoint.pt from hwnas train (or a state dict)")
    s.add_argument("--profile", action="store_true", help="measure the network's latency")
    s.add_argument("--backend", default="onnxruntime", help="profiling backend (default: %(default)s)")
    s.add_argument("--threads", type=positive, default=1, help="threads for profiling (default: %(default)s)")
    s.add_argument("--cost-model", metavar="DIR",
                   help="fitted cost model folder or asset:NAME: print its prediction too")
    add_device(s)
    s.set_defaults(func=_cmd_test)
