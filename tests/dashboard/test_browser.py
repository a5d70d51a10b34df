"""The dashboard in a real headless browser: Debian's chromium driven by playwright (never a
downloaded browser). Pages load without console errors, a run's Pareto plot draws the
front's points, and a running search's progress advances on the page as the search
checkpoints (synchronised by waiting for the page to show it, bounded)."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

pytest.importorskip("flask")
sync_api = pytest.importorskip("playwright.sync_api")

from hwnas.dashboard.server import make_server  # noqa: E402

from .conftest import brute_front, nb201_config  # noqa: E402

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium (make test installs it: apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                    args=FLAGS)
        yield ctx
        ctx.close()


def serving(runs: Path, store: Path | None = None) -> tuple[Any, str]:
    srv = make_server(runs, store, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_port}"


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A page at ``url`` with its console errors and uncaught exceptions collected."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    resp = page.goto(url, wait_until="load")
    assert resp is not None and resp.status == 200, url
    return page, errors


def test_pages_load_without_console_errors(browser: Any, runs_root: Path,
                                           shipped_store: tuple[Path, Path]) -> None:
    store, models = shipped_store
    link = runs_root / "models"
    shutil.copytree(models, link)
    srv, base = serving(runs_root, store)
    try:
        plots = {"/": 0, "/run/nb201-gold": 2, "/compare?run=nb201-gold&run=nb201-silver": 1, "/devices": 2,
                 "/store": 0, "/models": 0, "/model/models/cm/linear1": 2}
        for path, n_plots in plots.items():
            page, errors = open_page(browser, base + path)
            if n_plots:
                page.wait_for_function(f"document.querySelectorAll('.plot .main-svg').length >= {n_plots}",
                                       timeout=WAIT_MS)
            assert errors == [], (path, errors)
            page.close()
    finally:
        srv.shutdown()
        shutil.rmtree(link)


def test_pareto_plot_draws_the_front(browser: Any, runs_root: Path) -> None:
    srv, base = serving(runs_root)
    try:
        for run in ("nb201-gold", "nb201-silver"):
            page, errors = open_page(browser, f"{base}/run/{run}")
            page.wait_for_selector("#pareto .scatterlayer .trace", timeout=WAIT_MS)
            drawn = page.evaluate("document.querySelectorAll('#pareto .scatterlayer .trace')[1]"
                                  ".querySelectorAll('.point').length")
            assert drawn == len(brute_front(runs_root / run / "rollouts.csv")) > 0
            assert errors == []
            page.close()
    finally:
        srv.shutdown()


def test_running_search_progress_advances(browser: Any, tmp_path: Path) -> None:
    from hwnas.config import parse_config
    from hwnas.search.build import build_component, build_components, trainer_config

    runs = tmp_path / "runs"
    run_dir = runs / "live"
    run_dir.mkdir(parents=True)
    cfg = parse_config(nb201_config("gold_6226_ms", steps=6, every=1), source=None, base=tmp_path)
    comps = build_components(cfg)
    trainer = build_component(trainer_config(cfg), components=comps, run_dir=run_dir, seed=cfg.seed)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    trainer.step()
    trainer.checkpoint()
    srv, base = serving(runs)
    try:
        page, errors = open_page(browser, f"{base}/run/live")
        assert page.text_content("#status") == "running" and page.text_content("#step") == "1"
        for step in (2, 3):
            trainer.step()
            trainer.checkpoint()  # what a running search writes at each checkpoint
            page.wait_for_function(f"document.getElementById('step').textContent === '{step}'", timeout=WAIT_MS)
            assert page.text_content("#rollouts") == str(5 * step)
        width = page.evaluate("document.getElementById('bar').style.width")
        assert float(width.rstrip("%")) == pytest.approx(50.0)  # 3 of 6 steps
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
