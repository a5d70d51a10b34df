"""The card's workflow on embedded defaults: ``hwnas profile --device cpu``, ``hwnas fit-cost``,
``hwnas search --objective latency`` in an empty folder, with no other argument.

Why one module: the three commands must agree on one search space (the cost model that
``fit-cost`` fits has to price the networks that ``search`` samples), one store file and
one model folder, and a user must be able to find and edit every default. The space is the
small MobileNetV2 space on scikit-learn's digits (ships with scikit-learn, so nothing is
downloaded), the same one the shipped ``asset:mbv2-digits-cpu-ort`` table was measured on,
so ``search`` can fall back to that asset when nothing was profiled yet.

Floor: search (it names an asset only as a config string; :mod:`hwnas.config` resolves it).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from hwnas.errors import ConfigError, CostModelError

#: The space every card command works on, and its options (digits: 8x8 grey images upsampled to 32).
SPACE = "mbv2"
SPACE_OPTIONS: dict[str, Any] = {"resolution": 32, "width": 0.35, "in_channels": 1, "num_classes": 10}
#: Networks ``hwnas profile`` measures end to end (and block by block) when no --space is given:
#: enough for ``fit-cost`` to hold some out (it needs 2 to train and 2 to test).
NETWORKS = 12
#: Models the bare ``fit-cost`` fits: a dozen networks are too few for the learned models
#: (mlp, lstm, gnn); the table-sum and the linear corrections of it need only a few.
MODELS = "lut,linear1,linear2"
#: Where ``fit-cost`` writes its models when it fitted the default store.
COST_DIR = "hwnas-cost"
#: The shipped table ``search`` uses when nothing was fitted here.
ASSET_STORE = "asset:mbv2-digits-cpu-ort"
#: Run folder of the default search (``runs/card-<metric>``).
RUN_PREFIX = "runs/card-"


def space_args() -> list[str]:
    """The default space as ``hwnas profile`` arguments (for printed commands)."""
    return [a for k, v in SPACE_OPTIONS.items() for a in ("--space-opt", f"{k}={v}")]


def measured_pair(store_path: str | Path) -> tuple[str, str]:
    """The one (device fingerprint, backend) of a store that holds measured networks, so
    ``hwnas fit-cost`` needs no --device/--backend; several are refused with the choices."""
    from hwnas.errors import StoreError
    from hwnas.store import Store

    if not Path(store_path).exists():
        raise StoreError(f"no cost store at {store_path}; run `hwnas profile --device cpu` first (or give --store)")
    with Store(store_path, readonly=True) as st:
        groups = st.summary()["groups"]
    pairs = [(g["device"], g["fingerprint"], g["backend"], g["count"] - g["failed"]) for g in groups
             if g["kind"] == "network" and g["count"] > g["failed"]]
    if not pairs:
        raise StoreError(f"{store_path}: no measured networks to fit on; profile some with "
                         "`hwnas profile --device cpu` (it measures networks)")
    if len(pairs) > 1:
        choices = "; ".join(f"--device {fp[:12]} --backend {b} ({name}, {n} networks)" for name, fp, b, n in pairs)
        raise ConfigError(f"{store_path} holds several devices/backends; choose one: {choices}")
    return pairs[0][1], pairs[0][2]


def best_model(cost_dir: str | Path, metric: str = "latency") -> Path | None:
    """The model folder of ``cost_dir`` with the lowest held-out RMSE for ``metric``, or None
    when ``cost_dir`` holds no fit-cost report (nothing fitted here yet)."""
    report = Path(cost_dir) / "report.json"
    if not report.is_file():
        return None
    try:
        data = json.loads(report.read_text())
        models = data["models"]
        target = data.get("target", "latency")
    except (OSError, ValueError, KeyError, TypeError):
        raise CostModelError(f"{report}: not a fit-cost report (rerun `hwnas fit-cost`)") from None
    if target != metric:
        return None
    ok = {name: m for name, m in models.items() if isinstance(m, dict) and m.get("rmse") is not None
          and (Path(cost_dir) / name).is_dir()}
    if not ok:
        return None
    return Path(cost_dir) / min(ok, key=lambda name: float(ok[name]["rmse"]))


def hardware_section(metric: str, cost_dir: str | Path = COST_DIR) -> tuple[dict[str, Any], str]:
    """The hardware objective of the default search and a sentence saying what it prices with:
    the best model fitted in ``cost_dir`` (absolute path, so the written config can be re-run
    from anywhere), else the shipped table."""
    model = best_model(cost_dir, metric)
    if model is not None:
        return ({"type": "hardware", "metric": metric, "model": str(model.resolve()), "mode": "report"},
                f"{metric} from the cost model fitted here ({model})")
    if metric != "latency":
        raise ConfigError(f"--objective {metric}: nothing fitted for {metric} in {cost_dir}/ and the shipped "
                          "default table holds latency only; profile and fit energy first, or give a config")
    return ({"type": "hardware", "metric": "latency", "store": ASSET_STORE, "device": "cpu",
             "backend": "onnxruntime", "mode": "report"},
            f"latency from the shipped table {ASSET_STORE} (a reference CPU; run `hwnas profile --device cpu` "
            "and `hwnas fit-cost` first to price on this machine)")


def default_config(metric: str = "latency", cost_dir: str | Path = COST_DIR) -> tuple[dict[str, Any], str]:
    """The embedded search config (evolution, train-from-scratch on digits for 2 epochs per
    candidate, accuracy and the hardware metric as a Pareto front) and what it prices with.
    Sized to finish in about a minute on two CPU cores."""
    hw, what = hardware_section(metric, cost_dir)
    cfg: dict[str, Any] = {
        "seed": 0,
        "dataset": {"type": "digits", "resolution": SPACE_OPTIONS["resolution"],
                    "channels": SPACE_OPTIONS["in_channels"]},
        "search_space": {"type": SPACE, **SPACE_OPTIONS},
        "controller": {"type": "evolution", "population": 6, "sample_size": 3},
        "weights_manager": {"type": "plain"},
        "evaluator": {"type": "tune", "epochs": 2, "batch_size": 64, "lr": 0.05, "threads": 1},
        "objective": {"type": "composite", "objectives": [{"type": "classification", "split": "valid"}, hw]},
        "trainer": {"type": "simple", "steps": 12, "rollouts_per_step": 1, "checkpoint_every": 2, "reuse": True},
        "run": {"dir": "."},
    }
    return cfg, what


def write_default_config(path: str | Path, metric: str = "latency", cost_dir: str | Path = COST_DIR) -> str:
    """Write the embedded config to ``path`` (commented YAML, ``run.dir: .`` so re-running the
    file continues this run folder); returns what it prices with."""
    cfg, what = default_config(metric, cost_dir)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    head = ("# The default search of `hwnas search --objective " + metric + "` (hwnas.search.card).\n"
            f"# Prices {what}.\n"
            "# Edit and re-run: hwnas search " + str(p) + " --restart\n")
    p.write_text(head + yaml.safe_dump(cfg, sort_keys=False))
    return what


__all__ = ["ASSET_STORE", "COST_DIR", "MODELS", "NETWORKS", "RUN_PREFIX", "SPACE", "SPACE_OPTIONS", "best_model",
           "default_config", "hardware_section", "measured_pair", "space_args", "write_default_config"]
