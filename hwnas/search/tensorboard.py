"""TensorBoard event files of a search run (``RUN_DIR/tensorboard``): what PyTorch users watch.

Why here and optional: the trainers call a few methods of :class:`RunLog` (per step or
epoch: reward, accuracy, latency / energy, loss, learning rate; for a differentiable
search the architecture distribution's entropy and every edge's α; at the end the Pareto
front as a figure and the hyper-parameters with the final metrics). It is on by default
when the ``tensorboard`` extra is installed (``torch.utils.tensorboard`` needs the
``tensorboard`` package), and ``run.tensorboard: false`` switches it off; without the
package a run is unchanged (one debug line says why nothing is written), because a
missing viewer must never stop a search.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)

#: The folder of the event files inside a run directory (``tensorboard --logdir RUN_DIR``).
SUBDIR = "tensorboard"


def _summary_writer() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


def open_run_log(run_dir: Path | None, config: Any, start_step: int = 0) -> "RunLog | None":
    """The run's log, or None: no run folder, ``run.tensorboard: false``, or the
    ``tensorboard`` extra is not installed. ``start_step`` (the step a run resumes at; the
    trainers log step k after k steps) drops events past it that an interrupted run wrote
    after its last checkpoint, so a resumed curve has no doubles; a run started afresh
    (``--restart``) hides every older event of the folder."""
    run = getattr(config, "run", None)
    if run_dir is None or not getattr(run, "tensorboard", True):
        return None
    writer = _summary_writer()
    if writer is None:
        log.debug("no TensorBoard logs: pip install 'hwnas[tensorboard]'")
        return None
    return RunLog(writer(str(Path(run_dir) / SUBDIR), purge_step=start_step + 1 if start_step else 0), config)


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class RunLog:
    """One run's TensorBoard writer, with the records the trainers log."""

    def __init__(self, writer: Any, config: Any = None) -> None:
        self.w = writer
        self.config = config

    def scalars(self, step: int, values: Mapping[str, Any], prefix: str = "") -> None:
        """Every finite number of ``values`` as ``prefix + key``."""
        for k, v in values.items():
            f = _finite(v)
            if f is not None:
                self.w.add_scalar(prefix + k, f, step)

    def rollouts(self, step: int, rollouts: Sequence[Any], best_reward: float | None) -> None:
        """A step's rollouts: each perf's mean and best over them, the reward's, the best so far."""
        perfs: dict[str, list[float]] = {}
        for r in rollouts:
            for k, v in {**r.perfs, "reward": r.reward}.items():
                f = _finite(v)
                if f is not None:
                    perfs.setdefault(k, []).append(f)
        for k, vs in perfs.items():
            self.w.add_scalar(f"step/{k}", sum(vs) / len(vs), step)
        if best_reward is not None and _finite(best_reward) is not None:
            self.w.add_scalar("search/best_reward", float(best_reward), step)

    def alphas(self, step: int, probabilities: Mapping[str, Any]) -> None:
        """A differentiable search's distribution: per edge (a row of a group) its entropy and
        each choice's α (``alpha/GROUP/edgeE/I``; a one-row group has no ``edgeE``)."""
        import torch

        ents = []
        for name, p in probabilities.items():
            t = torch.as_tensor(p, dtype=torch.float64).detach()
            rows = t.reshape(-1, t.shape[-1]) if t.ndim >= 1 else t.reshape(1, 1)
            for e, row in enumerate(rows):
                if row.numel() < 2:
                    continue
                tag = f"{name}/edge{e}" if len(rows) > 1 else name
                ent = float(-(row.clamp_min(1e-12).log() * row).sum())
                ents.append(ent)
                self.w.add_scalar(f"entropy/{tag}", ent, step)
                for i, a in enumerate(row.tolist()):
                    self.w.add_scalar(f"alpha/{tag}/{i}", a, step)
        if ents:
            self.w.add_scalar("search/entropy", sum(ents) / len(ents), step)

    def pareto(self, step: int, points: Sequence[tuple[float, float]], front: Sequence[tuple[float, float]],
               labels: tuple[str, str]) -> None:
        """The Pareto front over all evaluated points, as a figure."""
        if not points:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=8, c="#9aa5b1", label="evaluated")
        fr = sorted(front)
        ax.step([p[0] for p in fr], [p[1] for p in fr], where="post", c="#d1495b", marker="o", label="Pareto front")
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.legend()
        fig.tight_layout()
        self.w.add_figure("search/pareto_front", fig, step)  # closes the figure

    def hparams(self, metrics: Mapping[str, Any]) -> None:
        """The config's options (flattened, ``section.key``) with the run's final metrics."""
        flat: dict[str, Any] = {}
        data = self.config.to_dict() if hasattr(self.config, "to_dict") else {}

        def walk(prefix: str, obj: Any) -> None:
            if isinstance(obj, Mapping):
                for k, v in obj.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            elif isinstance(obj, (bool, int, float, str)):
                flat[prefix] = obj
            elif obj is not None:
                flat[prefix] = str(obj)

        walk("", {k: v for k, v in data.items() if k != "run"})
        final = {f"hparam/{k}": f for k, v in metrics.items() if (f := _finite(v)) is not None}
        if flat and final:
            self.w.add_hparams(flat, final, run_name="hparams")

    def close(self) -> None:
        self.w.flush()
        self.w.close()


__all__ = ["SUBDIR", "RunLog", "open_run_log"]
