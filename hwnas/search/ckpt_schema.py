"""The schema of the files a run resumes from, checked before anything is loaded.

Why a module of its own: a checkpoint is a file like any other a user hands us (copied
between machines, edited, cut off by a full disk). ``torch.load`` and ``json.loads``
only prove it is well formed; whether ``epoch`` is an integer and every history row a
record of this run is a schema question, and the answer must be one line naming the
file and the field — not a ``ValueError`` deep inside ``int()`` nor a resumed run
built on garbage.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.errors import ConfigError, ValidationError
from hwnas.inputs import short


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _field_error(path: Path, field: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"{path}: damaged checkpoint ({field}: expected {expected}, got {short(got, 40)}); "
                       "choose another output folder")


def check_train_checkpoint(state: Mapping[str, Any], path: Path, fmt: str, arch: Sequence[int]) -> None:
    """Refuse a ``hwnas train`` checkpoint whose fields have the wrong type or disagree:
    format and architecture of this run, ``epoch`` an integer >= 0 with one ``history``
    row per epoch, ``losses`` numbers, the state dicts mappings."""
    saved_arch = state.get("arch")
    if state.get("format") != fmt or not isinstance(saved_arch, list) or not all(map(_is_int, saved_arch)) \
            or list(saved_arch) != list(arch):
        raise ConfigError(f"{path}: checkpoint is of another architecture or format; choose another output folder")
    for key in ("model", "optimizer", "scheduler", "epoch", "losses", "history"):
        if key not in state:
            raise ConfigError(f"{path}: damaged checkpoint (no {key!r}); choose another output folder")
    for key in ("model", "optimizer", "scheduler", *(("scaler",) if "scaler" in state else ())):
        if not isinstance(state[key], Mapping):
            raise _field_error(path, key, "a state dict", state[key])
    epoch, history, losses = state["epoch"], state["history"], state["losses"]
    if not _is_int(epoch) or epoch < 0:
        raise _field_error(path, "epoch", "an integer >= 0", epoch)
    if not isinstance(losses, list) or not all(map(_is_number, losses)):
        raise _field_error(path, "losses", "a list of numbers", losses)
    if not isinstance(history, list) or len(history) != epoch:
        raise _field_error(path, "history", f"a list of {epoch} epoch record(s)", history)
    for i, rec in enumerate(history):
        if not isinstance(rec, Mapping) or rec.get("epoch") != i + 1 or not _is_number(rec.get("train_loss")) \
                or not all(_is_number(v) for k, v in rec.items()):
            raise _field_error(path, f"history[{i}]", f"{{epoch: {i + 1}, train_loss: number, ...}}", rec)


def check_perfs(perfs: Any, where: str) -> dict[str, float]:
    """A rollout's perfs: names to numbers (NaN allowed: a diverged loss is a measurement;
    strings, booleans and nulls are not)."""
    if not isinstance(perfs, Mapping):
        raise ValidationError(f"{where}.perfs: expected a mapping of name: number, got {short(perfs, 40)}")
    out = {}
    for k, v in perfs.items():
        if not isinstance(k, str) or not _is_number(v):
            name = k[:30] if isinstance(k, str) else short(k, 30)
            raise ValidationError(f"{where}.perfs.{name}: expected a number, got {short(v, 40)}")
        out[k] = float(v)
    return out


def check_reward(reward: Any, where: str) -> float | None:
    """A rollout's reward: null (not evaluated) or a number (NaN too: a diverged run's
    reward is saved as it was)."""
    if reward is None:
        return None
    if not _is_number(reward):
        raise ValidationError(f"{where}.reward: expected a number or null, got {short(reward, 40)}")
    return float(reward)
