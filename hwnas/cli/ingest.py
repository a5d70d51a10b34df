"""``hwnas ingest`` and ``hwnas export-awnas``: thin CLI over the ingest package."""
from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from hwnas.cli.common import add_parser, add_store, comma_list, finite, local_path, names, positive
from hwnas.ui import emit, format_table


def _cmd_ingest(args: argparse.Namespace) -> int:
    from hwnas.profilers.ingest.core import IngestOptions, ingest_files

    opts = IngestOptions(fmt=args.format, files=args.files, device=args.device, backend=args.backend,
                         manifest=args.manifest, mapping=args.mapping, power=args.power,
                         power_format=args.power_format, rails=args.rails, segments=args.segments,
                         clock_offset_h=args.clock_offset, inferences=args.inferences, unmapped=args.unmapped,
                         precision=args.precision, device_notes=args.device_notes)
    report = ingest_files(opts, args.store, dry_run=args.dry_run)
    emit(report.to_dict(), as_json=args.json, table=summary_text(report.to_dict(), dry_run=args.dry_run,
                                                                 store=args.store))
    return 0


def summary_text(d: dict[str, Any], *, dry_run: bool = False, store: str = "") -> str:
    """Human summary: one row per file, then skipped items grouped by reason."""
    verb = "would store" if dry_run else f"stored in {store}"
    lines = [f"{verb}: {d['stored']} measurement(s), {d['with_energy']} with energy — device {d['device']} "
             f"(fingerprint {d['fingerprint']}), backend {d['backend']}"]
    lines.append(format_table(d["files"], ["file", "format", "items", "stored", "primitives", "networks",
                                           "with_energy", "skipped"]))
    if d["skipped"]:
        counts = Counter(s["reason"] for s in d["skipped"])
        first = {}
        for s in d["skipped"]:
            first.setdefault(s["reason"], f"{s['where']} {s['name']}")
        lines.append("skipped:")
        lines.append(format_table([{"count": n, "reason": r, "first": first[r]} for r, n in counts.most_common()],
                                  ["count", "reason", "first"]))
    return "\n".join(lines)


def _cmd_export_awnas(args: argparse.Namespace) -> int:
    from hwnas.profilers.ingest.awnas import export_awnas
    from hwnas.store import Store

    with Store(local_path(args.store, "store"), readonly=True) as st:
        res = export_awnas(st, args.device, args.backend, args.out)
    text = (f"wrote {res['written']} aw_nas entries ({res['with_power']} with power) to {res['path']}; "
            f"{len(res['skipped'])} primitive(s) have no aw_nas form")
    emit(res, as_json=args.json, table=text)
    return 0


def add_commands(sub: Any) -> None:
    p = add_parser(
        sub, "ingest", help="store offline results: DPU/Vitis logs, aw_nas tables, hwnas-results, power logs",
        description="Read latency files (and optionally a power log) measured on a device hwnas cannot drive, "
                    "validate every row, and store them all in one transaction: a malformed file stores "
                    "nothing. Formats are described in docs/ingest.md.",
        example="hwnas ingest --format dnndk dnndk_net.log --device zcu102-dpu-b4096 --mapping layers.yaml\n"
                "hwnas ingest --format awnas-yaml profiled_blocks.yaml --device zcu102-dpu-b4096\n"
                "hwnas ingest --format dnndk run.log --device zcu102-dpu-b4096 --power pat.csv --power-format pat "
                "--segments run_time_stamps.txt --clock-offset 16 --inferences 1000\n"
                "hwnas ingest --format csv results.csv --manifest bundle/manifest.json --device pixel3-cpu")
    p.add_argument("files", nargs="+", metavar="FILE", help="latency files of --format")
    p.add_argument("--format", required=True, choices=names("ingest_format"), help="latency file format")
    p.add_argument("--device", required=True, help="device name, e.g. zcu102-dpu-b4096 (an offline device)")
    p.add_argument("--backend", help="backend name to store under (default: dnndk, vaitrace, awnas, or offline)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--manifest", help="bundle manifest.json mapping item names to primitives/networks")
    g.add_argument("--mapping", help="YAML: layer name -> primitive key or primitive dict")
    p.add_argument("--unmapped", choices=("layer", "skip", "error"), default="layer",
                   help="layers no mapping names: store as opaque 'dpu_layer' primitives (default), skip, or fail")
    p.add_argument("--power", help="power log to compute energy from")
    p.add_argument("--power-format", choices=names("power_format"), default="pat",
                   help="power log format (default: %(default)s)")
    p.add_argument("--rails", type=comma_list, help="pat: NAME=COLUMN[,...] summed (default VCCINT=1); hwmon/watts: column names")
    p.add_argument("--segments", help="run segmentation file: NAME START END [INFERENCES] per line")
    p.add_argument("--clock-offset", type=finite, default=0.0, metavar="H",
                   help="hours added to segment times to reach the power logger's clock (default 0)")
    p.add_argument("--inferences", type=positive, help="inferences per run: energy = integral of power / count")
    p.add_argument("--precision", help="device precision (default int8 for DPU formats, fp32 otherwise)")
    p.add_argument("--device-notes", help="free text stored in the device fingerprint")
    p.add_argument("--dry-run", action="store_true", help="parse and validate only; store nothing")
    add_store(p)
    p.set_defaults(func=_cmd_ingest)

    e = add_parser(sub, "export-awnas", help="write a store table as an aw_nas profiled_blocks.yaml",
                   example="hwnas export-awnas --store hwnas-store.sqlite --device zcu102-dpu-b4096 "
                           "--backend awnas --out profiled_blocks.yaml")
    add_store(e)
    e.add_argument("--device", required=True, help="device id, fingerprint or name")
    e.add_argument("--backend", required=True, help="backend of the table, e.g. awnas or dnndk")
    e.add_argument("--out", required=True, help="output YAML path")
    e.set_defaults(func=_cmd_export_awnas)
