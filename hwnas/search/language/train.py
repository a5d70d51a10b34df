"""Training and evaluating a language model with the hidden state carried across windows.

Why not the engine's generic loop: a language model reads running text, so the state
after one window is the start of the next (detached, truncated back-propagation through
time), windows vary in length with the learning rate scaled to match (AWD-LSTM), and
NT-ASGD changes the optimiser mid-run and evaluates the *averaged* weights. The
optimiser step (gradient clipping) is the training core's
:func:`~hwnas.search.training.clip_and_step`.

Runs are resumable: after every epoch ``checkpoint.pt`` (model, optimiser, whether ASGD
is on, history, best weights) is replaced atomically, and a rerun continues from it.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError
from hwnas.search.language.corpus import Corpus, batchify, bptt_windows
from hwnas.search.language.recipe import LMRecipe
from hwnas.search.training import TrainingDiverged, clip_and_step

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
FORMAT = "hwnas-lm-1"


@torch.no_grad()
def evaluate_lm(model: nn.Module, ids: np.ndarray, batch_size: int, bptt: int, max_windows: int = 0) -> float:
    """Mean cross-entropy (nats per token) of ``model`` over ``ids``, reading
    ``batch_size`` rows in fixed ``bptt`` windows with the state carried (eval mode;
    the mode is restored). ``exp`` of it is the perplexity."""
    was = model.training
    model.eval()
    rows = torch.from_numpy(batchify(ids, batch_size))
    total, n, hidden = 0.0, 0, None
    try:
        for k, (i, seq) in enumerate(bptt_windows(rows.shape[1], bptt, None)):
            if max_windows and k >= max_windows:
                break
            x, y = rows[:, i:i + seq], rows[:, i + 1:i + 1 + seq].reshape(-1)
            logits, hidden = model.step(x, hidden)  # type: ignore[operator]
            total += float(F.cross_entropy(logits, y, reduction="sum"))
            n += len(y)
    finally:
        model.train(was)
    return total / max(1, n)


@dataclass
class LMRun:
    """What a final training run holds (and its checkpoint stores)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    asgd: bool = False
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, torch.Tensor] | None = None
    best_loss: float = math.inf


def _optimizer(model: nn.Module, r: LMRecipe, asgd: bool) -> torch.optim.Optimizer:
    if asgd:
        return torch.optim.ASGD(model.parameters(), lr=r.lr, t0=0, lambd=0.0, weight_decay=r.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)


def _averaged(run: LMRun) -> dict[str, torch.Tensor] | None:
    """Under ASGD, the averaged weights (``ax``) by parameter name; else None."""
    if not run.asgd:
        return None
    names = {id(p): n for n, p in run.model.named_parameters()}
    out = {}
    for group in run.optimizer.param_groups:
        for p in group["params"]:
            st = run.optimizer.state.get(p, {})
            if "ax" in st:
                out[names[id(p)]] = st["ax"].detach().clone()
    return out


def _evaluate_with(run: LMRun, weights: dict[str, torch.Tensor] | None, fn: Callable[[], float]) -> float:
    """``fn()`` with ``weights`` (ASGD's averages) swapped into the model, then swapped back."""
    if not weights:
        return fn()
    params = dict(run.model.named_parameters())
    saved = {n: params[n].detach().clone() for n in weights}
    with torch.no_grad():
        for n, w in weights.items():
            params[n].copy_(w)
    try:
        return fn()
    finally:
        with torch.no_grad():
            for n, w in saved.items():
                params[n].copy_(w)


def train_epoch(run: LMRun, ids: np.ndarray, r: LMRecipe, seed: int) -> float:
    """One pass of truncated BPTT over ``ids``; returns the mean training loss."""
    model, opt = run.model, run.optimizer
    model.train()
    rows = torch.from_numpy(batchify(ids, r.batch_size))
    rng = np.random.default_rng([seed, run.epoch])
    torch.manual_seed(seed * 100_003 + run.epoch)
    hidden, losses = None, []
    for k, (i, seq) in enumerate(bptt_windows(rows.shape[1], r.bptt, rng)):
        if r.max_windows and k >= r.max_windows:
            break
        for g in opt.param_groups:
            g["lr"] = r.lr * seq / r.bptt  # AWD-LSTM: longer windows, larger steps
        x, y = rows[:, i:i + seq], rows[:, i + 1:i + 1 + seq].reshape(-1)
        hidden = None if hidden is None else hidden.detach()
        opt.zero_grad(set_to_none=True)
        logits, hidden = model.step(x, hidden)  # type: ignore[operator]
        loss = F.cross_entropy(logits, y)
        if not math.isfinite(float(loss.detach())):
            raise TrainingDiverged(f"language model training diverged at epoch {run.epoch + 1}, window {k + 1} "
                                   "(lower objective.final.lr or set grad_clip)")
        loss.backward()
        clip_and_step(opt, model.parameters(), r.grad_clip)
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def _save(run: LMRun, path: Path, arch: str) -> None:
    state = {"format": FORMAT, "arch": arch, "epoch": run.epoch, "asgd": run.asgd, "history": run.history,
             "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "best": run.best,
             "best_loss": run.best_loss}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _resume(run: LMRun, path: Path, arch: str, r: LMRecipe) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a language-model checkpoint of this version (format {FORMAT})")
    if state.get("arch") != arch:
        raise ConfigError(f"{path}: checkpoint holds cell {state.get('arch')!r}, not {arch!r}; choose another folder")
    run.model.load_state_dict(state["model"])
    run.asgd = bool(state["asgd"])
    run.optimizer = _optimizer(run.model, r, run.asgd)
    run.optimizer.load_state_dict(state["optimizer"])
    run.epoch, run.history = int(state["epoch"]), list(state["history"])
    run.best, run.best_loss = state["best"], float(state["best_loss"])


def train_lm(model: nn.Module, corpus: Corpus, r: LMRecipe, out_dir: Path, *, arch: str, seed: int = 0,
             on_epoch: Callable[[dict[str, float]], None] | None = None, stop_after: int | None = None) -> LMRun:
    """Train ``model`` (a :class:`~hwnas.search.language.model.PlannedLM`) on the corpus'
    training split by recipe ``r``, validating after each epoch; keeps the best weights
    (by validation loss; ASGD's averages once it is on). Resumes ``out_dir``'s checkpoint;
    ``stop_after`` ends this call after that many epochs (the run stays resumable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CHECKPOINT
    run = LMRun(model, _optimizer(model, r, False))
    if path.exists():
        _resume(run, path, arch, r)
    end = r.epochs if stop_after is None else min(r.epochs, run.epoch + stop_after)
    while run.epoch < end:
        train_loss = train_epoch(run, corpus.ids["train"], r, seed)
        avg = _averaged(run)
        val = _evaluate_with(run, avg, lambda: evaluate_lm(model, corpus.ids["valid"], r.eval_batch_size, r.bptt))
        run.epoch += 1
        rec = {"epoch": run.epoch, "train_loss": train_loss, "valid_loss": val, "valid_ppl": math.exp(val),
               "asgd": float(run.asgd)}
        run.history.append(rec)
        if val < run.best_loss:
            run.best_loss = val
            run.best = avg or {k: v.detach().clone() for k, v in model.state_dict().items()}
        past = [h["valid_loss"] for h in run.history[:-r.nonmono]]
        if r.asgd and not run.asgd and past and val > min(past):
            log.info("epoch %d: switching to ASGD (validation loss %.4f > best %.4f)", run.epoch, val, min(past))
            run.asgd, run.optimizer = True, _optimizer(model, r, True)
        _save(run, path, arch)
        if on_epoch is not None:
            on_epoch(rec)
    return run


def load_best(run: LMRun) -> None:
    """Put the best weights seen (by validation loss) into the model."""
    if run.best:
        copy_weights(run.model, run.best)


def copy_weights(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy ``weights`` into ``model``'s parameters by name (tied matrices written once)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in weights:
                p.copy_(weights[name])


def load_checkpoint_weights(model: nn.Module, path: Path, arch: str) -> int:
    """Load the best weights of a training checkpoint into ``model``; returns its epochs."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read the checkpoint ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a language-model checkpoint of this version (format {FORMAT})")
    if state.get("arch") != arch:
        raise ConfigError(f"{path}: checkpoint holds cell {state.get('arch')!r}, not {arch!r}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ConfigError(f"{path}: weights do not fit this model ({str(exc).splitlines()[0][:120]})") from None
    copy_weights(model, state.get("best") or {})
    return int(state["epoch"])
