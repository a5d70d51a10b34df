"""``hwnas gen-config --final RUN_DIR|ARCH``: the final-training config of a derived architecture.

Why: a search runs a small, cheap version of the problem (a few cells, few channels, a
part of the data); the architecture it derives is then trained properly, with the
recipe of ``run.train`` applied. This writes that as two files a person reads and edits
before the long run: a config with only what final training and testing read (seed,
dataset, the final search space with ``run.train.space`` / ``run.train.dataset`` already
applied, the objective for ``hwnas test --profile``, and the complete ``run.train``
recipe with every default written out), and the architecture file ``hwnas train --arch``
reads. Both are checked by loading them before they are written (the paper's
``gen-final-sample-config``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hwnas.config import load_config, parse_config
from hwnas.errors import ConfigError
from hwnas.inputs import output_file
from hwnas.search.archfile import ArchFile, read_arch_file

#: Sections a search needs and final training never reads.
SEARCH_ONLY = ("controller", "weights_manager", "evaluator", "trainer")


def run_arch(run_dir: Path, rank: int) -> ArchFile:
    """The architecture a run derived: its best.yaml (``hwnas derive``), its genotype.yaml
    (a differentiable search), else the best of its history."""
    for name in ("best.yaml", "genotype.yaml"):
        if (run_dir / name).is_file():
            return read_arch_file(run_dir / name, rank if name == "best.yaml" else 0)
    from hwnas.search.report import derive

    best = derive(run_dir, top=rank + 1)
    if len(best) <= rank:
        raise ConfigError(f"{run_dir}: {len(best)} feasible architecture(s) to derive; rank {rank} is out of range")
    return ArchFile(run_dir / "rollouts.csv", None, best[rank]["arch_str"])


def final_config(source: str | Path, *, config: str | Path | None = None, rank: int = 0) -> tuple[dict[str, Any],
                                                                                                     dict[str, Any]]:
    """(final config, architecture record) for a run folder, or an architecture file with
    the search ``config`` it came from."""
    src = Path(source)
    if src.is_dir():
        cfg_path = Path(config) if config else src / "config.yaml"
        if not cfg_path.is_file():
            raise ConfigError(f"{src}: not a search run folder (no config.yaml); give a run folder of "
                              "`hwnas search`, or an architecture file with --config")
        arch_file = run_arch(src, rank)
    elif src.is_file():
        if not config:
            raise ConfigError(f"gen-config --final {src}: an architecture file needs --config (the search config "
                              "it was derived with)")
        cfg_path, arch_file = Path(config), read_arch_file(src, rank)
    else:
        raise ConfigError(f"gen-config --final {src}: no such run folder or architecture file")
    d = load_config(cfg_path).to_dict()
    run = d.get("run") or {}
    train = dict(run.get("train") or {})
    d["search_space"] = {**d["search_space"], **(train.get("space") or {})}
    if "dataset" in d:
        d["dataset"] = {**d["dataset"], **(train.get("dataset") or {})}
    train["space"], train["dataset"] = {}, {}
    run = {k: v for k, v in run.items() if k != "dir"}
    run["train"] = train
    final = {k: v for k, v in d.items() if k not in SEARCH_ONLY and k != "run"}
    final["run"] = run
    cfg = parse_config(final, source=cfg_path, base=cfg_path.resolve().parent)  # refuses what would not load
    space = cfg["search_space"].build()
    arch = arch_file.resolve(space)
    sec = dict(final["search_space"])
    record = {"space": sec, "arch_str": space.to_str(arch), "source": str(src)}
    return final, record


def write_final(source: str | Path, *, config: str | Path | None = None, rank: int = 0,
                out: str | Path | None = None) -> dict[str, Any]:
    """Write the final config (default RUN_DIR/final.yaml; stdout-only for an architecture
    file without ``out``) and its architecture beside it (``<out stem>-arch.yaml``)."""
    final, record = final_config(source, config=config, rank=rank)
    target = Path(out) if out else (Path(source) / "final.yaml" if Path(source).is_dir() else None)
    arch_path = target.with_name(target.stem + "-arch.yaml") if target is not None else Path(source)
    train_cmd = f"hwnas train {target or 'FINAL.yaml'} --arch {arch_path}"
    head = (f"# Final training of {record['arch_str']}\n# derived from {record['source']} "
            f"(hwnas gen-config --final); edit run.train, then:\n#   {train_cmd}\n")
    text = head + yaml.safe_dump(final, sort_keys=False)
    if target is not None:
        output_file(target, "final config").write_text(text)
        arch_path.write_text("# written by hwnas gen-config --final\n" + yaml.safe_dump(record, sort_keys=False))
    return {"config": str(target) if target else None, "arch": str(arch_path), "arch_str": record["arch_str"],
            "text": text, "train": train_cmd}


__all__ = ["SEARCH_ONLY", "final_config", "run_arch", "write_final"]
