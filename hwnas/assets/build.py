"""Build every shipped asset from the shared datasets: ``make assets``.

    python -m hwnas.assets.build [--shared ../shared/datasets] [--only 'nb201-*'] [--cpu-store S]

Paths default relative to the project root (where ``make`` runs). The per-device models,
the multi-device bases, the latency tables and the ZCU102 block table come from the
shared data alone; the reference CPU table is a measurement (``make assets-cpu`` runs
``hwnas profile`` on a quiet machine and passes its store here as ``--cpu-store``); without
one, the CPU asset already in the tree is kept as it is. CI never runs this: the built
files are committed and ``tests/assets`` checks their manifests and sha256.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from hwnas.assets import DATA_DIR
from hwnas.assets import recipes as R
from hwnas.ui import emit

log = logging.getLogger("hwnas.assets.build")

#: Per-device model and its options: the GNN is as accurate as the LSTM on these tables
#: and ~150 kB per device (an MLP on NB201's 2,481 inputs is 1.3 MB) — see docs/assets.md.
DEVICE_MODEL, DEVICE_PARAMS = "gnn", {"steps": 1500}
#: The base of few-shot transfer: the GNN encoder won bench/transfer.py on the FBNet table (k=10 mean
#: Spearman 0.929 vs 0.912 for the MLP encoder) and is what the NB201 figures were measured with.
BASE_PARAMS = {"encoder": "gnn", "members": 3, "steps": 3000}


def _wanted(name: str, only: Sequence[str]) -> bool:
    return not only or any(fnmatch.fnmatch(name, pat) for pat in only)


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _bench(path: Path, dataset: str) -> dict[str, Any] | None:
    """Few-shot transfer figures of ``bench/transfer.py`` for the base's manifest, if run."""
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    summary = (doc.get("datasets", {}).get(dataset) or {}).get("summary")
    if not summary:
        return None
    return {**summary, "source": f"bench/results/{path.name}", "protocol": doc.get("protocol", "")}


def build_dataset(dataset: str, shared: Path, out: Path, only: Sequence[str], bench: Path) -> list[str]:
    import pandas as pd

    from hwnas.config import build_space

    rel, col, space = R.TABLES[dataset]
    source = shared / rel
    df = pd.read_csv(source)
    columns = [c for c in df.columns if c.endswith("_ms")]
    names = [R.asset_name(dataset, c) for c in columns] + [f"{dataset}-base", f"{dataset}-latency"]
    if not any(_wanted(n, only) for n in names):
        return []
    if _wanted(f"{dataset}-latency", only):
        R.latency_table(dataset, source, _fresh(out / f"{dataset}-latency"))
    sp = build_space(space)
    nets = [sp.to_network(sp.from_str(s)) for s in df[col].astype(str)]
    done = [f"{dataset}-latency"] if _wanted(f"{dataset}-latency", only) else []
    if _wanted(f"{dataset}-base", only):
        t0 = time.perf_counter()
        R.base_model(dataset, columns, nets, df[columns].to_numpy(float), _fresh(out / f"{dataset}-base"), source,
                     BASE_PARAMS, _bench(bench, dataset))
        log.info("%s-base in %.0fs", dataset, time.perf_counter() - t0)
        done.append(f"{dataset}-base")
    for c in columns:
        name = R.asset_name(dataset, c)
        if _wanted(name, only):
            t0 = time.perf_counter()
            doc = R.per_device_model(dataset, c, nets, df[c].to_numpy(float), _fresh(out / name), source,
                                     DEVICE_MODEL, DEVICE_PARAMS)
            log.info("%s: %s in %.0fs", name, doc["headline"], time.perf_counter() - t0)
            done.append(name)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared/datasets", help="shared datasets folder (default: %(default)s)")
    ap.add_argument("--out", default=str(DATA_DIR), help="asset folder (default: the package's assets/data)")
    ap.add_argument("--only", action="append", default=[], metavar="GLOB", help="build only matching assets")
    ap.add_argument("--cpu-store", action="append", default=[], metavar="NAME=STORE",
                    help="a store measured by `make assets-cpu`, packaged as asset NAME (repeatable)")
    ap.add_argument("--cpu-only", action="store_true", help="only package --cpu-store tables (no shared data)")
    ap.add_argument("--bench", default="bench/results/transfer.json", help="transfer bench JSON for base manifests")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    if args.cpu_store:
        from hwnas.assets.cpu_table import cpu_assets

        pairs = dict(item.split("=", 1) for item in args.cpu_store if "=" in item)
        done += cpu_assets({k: Path(v) for k, v in pairs.items()}, out, args.only)
    if args.cpu_only:
        emit(done, as_json=False, table=f"built {len(done)} asset(s) in {out}: {', '.join(done)}")
        return 0
    if not shared.is_dir():
        log.error("no shared datasets at %s (give --shared)", shared)
        return 2
    for dataset in R.TABLES:
        done += build_dataset(dataset, shared, out, args.only, Path(args.bench))
    if _wanted("zcu102-dpu-blocks", args.only):
        with tempfile.TemporaryDirectory() as tmp:
            R.fpga_store(shared / R.FPGA_YAML, _fresh(out / "zcu102-dpu-blocks"), Path(tmp) / "s.sqlite")
        done.append("zcu102-dpu-blocks")
    emit(done, as_json=False, table=f"built {len(done)} asset(s) in {out}: {', '.join(done)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
