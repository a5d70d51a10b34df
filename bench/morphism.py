"""Does inheriting weights by morphism pay? Children grown from trained parents vs the same
children trained from scratch, with the same short fine-tune, on small data (digits).

For each of ``--parents`` random parents (the smallest mbv2 architecture grown by random
morphisms) the parent is trained (``tune``, ``--parent-epochs`` epochs); one child grown from
it by ``--morphisms`` random morphisms is then built twice: by the ``morphism`` weights
manager from the trained parent, and fresh (seeded init, as ``plain`` gives). Both get the
same fine-tune (``--finetune-steps`` SGD steps, seeded by architecture) and are scored on the
validation split (never trained on). The morphed child is also scored before its fine-tune:
function preservation means it scores exactly what its parent scores.

Run: .venv/bin/python bench/morphism.py   (prints a table, writes bench/results/morphism.json)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from hwnas.config import parse_config  # noqa: E402
from hwnas.search.build import build_component, build_components  # noqa: E402
from hwnas.search.evaluators.predictor import fill  # noqa: E402
from hwnas.search.rollout import Rollout  # noqa: E402
from hwnas.ui import format_table  # noqa: E402


def config(epochs: int, max_steps: int) -> Any:
    return parse_config({
        "seed": 0, "run": {"device": "cpu"},
        "dataset": {"type": "digits", "resolution": 16, "channels": 1},
        "search_space": {"type": "mbv2", "resolution": 16, "in_channels": 1, "width": 0.25, "num_classes": 10},
        "weights_manager": {"type": "morphism", "keep": 64},
        "evaluator": {"type": "tune", "epochs": epochs, "max_steps": max_steps, "batch_size": 64, "lr": 0.05,
                      "bn_recalibrate": 4},
        "objective": {"type": "classification"},
        "controller": {"type": "morphism_evolution"}}, base=ROOT)


def one_pair(c: Any, parent_eval: Any, arch: tuple[int, ...], child: tuple[int, ...], kinds: list[str]) -> dict:
    """Train the parent, then fine-tune its morphed child and the fresh child alike."""
    sp, wm = c.space, c.weights_manager
    p = Rollout(arch)
    parent_eval.evaluate([_assembled(wm, p)])
    morphed = _assembled(wm, Rollout(child, info={"parent": sp.to_str(arch)}))
    before = Rollout(child)
    fill(c.objective, [before], [morphed.candidate])  # scored as built: the parent's function
    c.evaluator.evaluate([morphed])
    fresh = Rollout(child)
    fresh.candidate = wm.fresh(sp.validate(child)).train()
    c.evaluator.evaluate([fresh])
    return {"parent": sp.to_str(arch), "morphisms": "+".join(kinds),
            "parent_acc": round(p.perfs["accuracy"], 4), "child_before_finetune": round(before.perfs["accuracy"], 4),
            "morphed_child_acc": round(morphed.perfs["accuracy"], 4), "fresh_child_acc": round(fresh.perfs["accuracy"], 4)}


def _assembled(wm: Any, r: Rollout) -> Rollout:
    r.candidate = wm.assemble_candidate(r)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parents", type=int, default=4)
    ap.add_argument("--parent-epochs", type=int, default=1)
    ap.add_argument("--finetune-steps", type=int, default=8)
    ap.add_argument("--morphisms", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "morphism.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    c = build_components(config(1, args.finetune_steps))
    parent_eval = build_component(config(args.parent_epochs, 0)["evaluator"], space=c.space, objective=c.objective,
                                  dataset=c.dataset, weights_manager=c.weights_manager, seed=0, runtime=c.runtime)
    ctrl = c.controller
    rows = []
    for i in range(args.parents):
        ctrl.rng = np.random.default_rng(i)
        arch, _ = ctrl.grow(ctrl.smallest(), 3)
        child, kinds = ctrl.grow(arch, args.morphisms)
        rows.append(one_pair(c, parent_eval, arch, child, kinds))
        print(format_table([rows[-1]]).splitlines()[-1], flush=True)
    print(format_table(rows))
    gain = [r["morphed_child_acc"] - r["fresh_child_acc"] for r in rows]
    kept = all(r["child_before_finetune"] == r["parent_acc"] for r in rows)
    print(f"morphed - fresh child accuracy after {args.finetune_steps} fine-tune steps: mean {np.mean(gain):+.4f} "
          f"(min {min(gain):+.4f}); child before fine-tune scores its parent's accuracy: {kept}")
    doc = {"note": "small data: digits (8x8 upscaled to 16x16), mbv2 width 0.25; accuracy on the validation split",
           "settings": vars(args), "rows": rows, "mean_gain": round(float(np.mean(gain)), 4),
           "morphed_wins": int(sum(g > 0 for g in gain)), "pairs": len(rows), "function_kept": kept,
           "seconds": round(time.perf_counter() - t0, 1), "load_average": os.getloadavg()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
