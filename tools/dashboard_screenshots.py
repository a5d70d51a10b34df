"""Screenshots of the dashboard's main pages for the README (docs/img/dashboard-*.png).

    python tools/dashboard_screenshots.py --runs RUNS_DIR --store STORE --run RUN --compare A,B --model MODEL

Drives Debian's chromium (headless, playwright) against a local server on the given
folders; the figures are whatever those runs hold.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--store")
    ap.add_argument("--run", required=True, help="run id for the run page")
    ap.add_argument("--compare", required=True, help="comma-separated run ids")
    ap.add_argument("--model", help="cost model id for the model page")
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from hwnas.dashboard.server import make_server

    srv = make_server(args.runs, args.store, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    pages = {"runs": "/", "run": f"/run/{args.run}",
             "compare": "/compare?" + "&".join(f"run={r}" for r in args.compare.split(",")), "store": "/store"}
    if args.model:
        pages["model"] = f"/model/{args.model}"
    with tempfile.TemporaryDirectory() as prof, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(prof, executable_path=shutil.which("chromium"), headless=True,
                                                    args=FLAGS, viewport={"width": 1100, "height": 900})
        for name, path in pages.items():
            page = ctx.new_page()
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(Path(args.out) / f"dashboard-{name}.png"), full_page=False)
            page.close()
        ctx.close()
    srv.shutdown()


if __name__ == "__main__":
    main()
