"""Offline ingestion: FPGA / Vitis AI profiler logs, aw_nas tables, hwnas-results files,
and power logs, into the cost store.

Importing the package registers every latency format under the registry role
``ingest_format`` (``dnndk``, ``vaitrace-txt``, ``vaitrace-csv``, ``awnas-yaml``, ``csv``,
``json``); :func:`ingest` is the one entry point the CLI calls. See docs/ingest.md.
"""
from __future__ import annotations

from hwnas.profilers.ingest import awnas, dnndk, results, vaitrace_csv, vaitrace_txt  # noqa: F401  (registers)
from hwnas.profilers.ingest.awnas import export_awnas
from hwnas.profilers.ingest.core import IngestOptions, IngestReport, ingest, plan

__all__ = ["IngestOptions", "IngestReport", "export_awnas", "ingest", "plan"]
