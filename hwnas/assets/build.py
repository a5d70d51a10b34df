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
#: The base of few-shot transfer: the GNN encoder won an earlier single-column run of bench/transfer.py
#: on the FBNet table (k=10 mean Spearman 0.929 vs 0.912 for the MLP encoder; docs/assets.md).
BASE_PARAMS = {"encoder": "gnn", "members": 3, "steps": 3000}
#: Transfer bench runs whose figures go into the base manifests (first: the headline's).
BENCH = ("bench/results/transfer_family_gnn.json", "bench/results/transfer_family.json")


def _wanted(name: str, only: Sequence[str]) -> bool:
    return not only or any(fnmatch.fnmatch(name, pat) for pat in only)


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _compact(summary: dict[str, Any]) -> dict[str, Any]:
    """Mean and worst device per k for both methods, per-device figures at k=10 only."""
    out: dict[str, Any] = {}
    for method, by_k in summary.items():
        if not isinstance(by_k, dict):
            continue
        out[method] = {k: {f: v[f] for f in ("mean", "worst", "worst_device")} | (
            {"per_device": v["per_device"]} if k == "k=10" and method == "new" else {})
            for k, v in by_k.items() if isinstance(v, dict)}
    return out


def _bench(paths: Sequence[Path], dataset: str) -> dict[str, Any] | None:
    """Few-shot transfer figures of ``bench/transfer.py`` runs for a base's manifest.

    Why the wording: the shipped base is fit on every device column of its table, so no
    device there is unseen to it; the figures are of bases built the same way without the
    left-out device family (``family``) or column (``device``), with each run's settings.
    """
    runs = []
    for path in paths:
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        ds = (doc.get("datasets") or {}).get(dataset) or {}
        protocols = {p: _compact(ds[p]["summary"]) for p in ("family", "device") if (ds.get(p) or {}).get("summary")}
        if protocols:
            runs.append({"source": f"bench/results/{path.name}", "protocols": protocols,
                         **{k: doc.get(k) for k in ("encoder", "members", "steps", "base_archs", "seeds", "k",
                                                    "split_seed")},
                         "protocol_text": {p: (doc.get("protocols") or {}).get(p, "") for p in protocols}})
    if not runs:
        return None
    return {"this_base": "fit on every device column of its table: no device in the table is unseen to it, so "
                         "its own few-shot figure on an unseen device cannot be measured with this table",
            "runs": runs}


def refresh_transfer(out: Path, bench: Sequence[Path]) -> list[str]:
    """Rewrite the transfer figures and headline of the shipped base manifests in place
    (the model files, and so their sha256, are untouched)."""
    done = []
    for dataset in R.TABLES:
        folder = out / f"{dataset}-base"
        figures = _bench(bench, dataset)
        if not (folder / R.MANIFEST).is_file() or figures is None:
            continue
        meta = json.loads((folder / R.MANIFEST).read_text())
        meta = {k: v for k, v in meta.items() if k not in ("name", "files")}
        meta["metrics"]["few_shot_transfer"] = figures
        meta["headline"] = R.transfer_headline(figures, meta["metrics"]["mean_spearman_per_device"])
        R.write_manifest(folder, meta)
        done.append(folder.name)
    return done


def build_dataset(dataset: str, shared: Path, out: Path, only: Sequence[str], bench: Sequence[Path]) -> list[str]:
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
    ap.add_argument("--bench", default=",".join(BENCH), help="transfer bench JSONs for the base manifests, comma-"
                                                             "separated (default: %(default)s)")
    ap.add_argument("--refresh-transfer", action="store_true",
                    help="only rewrite the base manifests' transfer figures from --bench (no rebuild)")
    args = ap.parse_args(argv)
    bench = [Path(p) for p in args.bench.split(",") if p]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.refresh_transfer:
        done = refresh_transfer(out, bench)
        emit(done, as_json=False, table=f"refreshed {len(done)} manifest(s) in {out}: {', '.join(done)}")
        return 0
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
        done += build_dataset(dataset, shared, out, args.only, bench)
    if _wanted("zcu102-dpu-blocks", args.only):
        with tempfile.TemporaryDirectory() as tmp:
            R.fpga_store(shared / R.FPGA_YAML, _fresh(out / "zcu102-dpu-blocks"), Path(tmp) / "s.sqlite")
        done.append("zcu102-dpu-blocks")
    emit(done, as_json=False, table=f"built {len(done)} asset(s) in {out}: {', '.join(done)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
