"""Task objective: accuracy and loss of a trained candidate on a dataset split."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

from hwnas.config import opt
from hwnas.errors import ConfigError, HwnasError
from hwnas.registry import register
from hwnas.search.datasets.base import Dataset
from hwnas.search.objectives.base import Objective
from hwnas.search.rollout import Rollout
from hwnas.search.spaces.base import SearchSpace


def evaluate_module(model: Any, loader: Any, max_batches: int = 0, runtime: Any = None) -> tuple[float, float]:
    """(accuracy in [0, 1], mean cross-entropy) of a torch classifier over a loader
    (batches moved to the runtime's device, forward under its autocast)."""
    import contextlib

    import torch
    import torch.nn.functional as F

    model.eval()
    correct, total, loss = 0, 0, 0.0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            x, y = runtime.batch(batch) if runtime is not None else batch
            with runtime.autocast() if runtime is not None else contextlib.nullcontext():
                out = model(x).float()
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            total += len(y)
    if total == 0:
        raise HwnasError("classification objective: the evaluation split is empty")
    return correct / total, loss / total


@register("objective", "classification")
class ClassificationObjective(Objective):
    """Accuracy (the reward) and cross-entropy loss of each candidate on a dataset split."""

    perf_names = ("accuracy", "loss")

    @dataclass(frozen=True)
    class Options:
        split: Literal["train", "valid", "test"] = opt("valid", help="split the candidates are scored on")
        batch_size: int = opt(256, min=1, help="evaluation batch size")
        max_batches: int = opt(0, min=0, help="score on at most this many batches (0 = the whole split)")

    def __init__(self, options: Any, *, space: SearchSpace | None = None, dataset: Dataset | None = None,
                 runtime: Any = None, **_: Any) -> None:
        self.options = options
        self.space = space
        self.dataset = dataset
        self.runtime = runtime

    def perfs(self, rollouts: Sequence[Rollout], candidates: Sequence[Any] | None = None) -> list[dict[str, float]]:
        if self.dataset is None:
            raise ConfigError("dataset: the classification objective needs a dataset section")
        if candidates is None or any(c is None for c in candidates):
            raise ConfigError("evaluator: the classification objective needs trained candidates "
                              "(use evaluator tune, or a shared-weights evaluator)")
        loader = self.dataset.loader(self.options.split, batch_size=self.options.batch_size, shuffle=False)
        out = []
        for cand in candidates:
            acc, loss = evaluate_module(cand, loader, self.options.max_batches, self.runtime)
            out.append({"accuracy": acc, "loss": loss})
        return out

    def reward(self, perfs: Mapping[str, float]) -> float:
        return float(perfs["accuracy"])

    def directions(self) -> dict[str, str]:
        return {"accuracy": "max"}
