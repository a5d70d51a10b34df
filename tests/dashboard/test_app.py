"""The dashboard's pages through Flask's test client: fronts, pagination, stores, cost
models, and that nothing outside the given folders can be reached or changed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("flask")

from hwnas.dashboard.app import PAGE_SIZE, create_app  # noqa: E402

from .conftest import brute_front  # noqa: E402


def test_run_front_matches_pairwise_dominance(runs_root: Path) -> None:
    c = create_app(runs_root).test_client()
    for run in ("nb201-gold", "nb201-silver"):
        figs = c.get(f"/api/run/{run}/figures").get_json()
        front = figs["pareto"]["data"][1]
        assert set(zip(front["x"], front["y"])) == brute_front(runs_root / run / "rollouts.csv")
        assert all("|" in arch for arch in front["text"])  # each front point names its architecture
        st = c.get(f"/api/run/{run}/status").get_json()
        assert st["status"] == "finished" and st["step"] == st["steps"] == 8 and st["rollouts"] == 40
        assert st["front"] == len(front["x"])


def test_pages_list_compare_and_devices(runs_root: Path) -> None:
    c = create_app(runs_root).test_client()
    index = c.get("/").get_data(as_text=True)
    assert "nb201-gold" in index and "nb201-silver" in index and "finished" in index
    comp = c.get("/compare?run=nb201-gold&run=nb201-silver&run=../etc").get_data(as_text=True)
    assert comp.count('class="plot"') == 1 and "gold_6226_ms" in comp and "silver_4114_ms" in comp
    dev = c.get("/devices").get_data(as_text=True)
    assert dev.count('class="plot"') == 2  # one front per device column


def test_rollouts_table_is_paginated_and_sorted(runs_root: Path) -> None:
    import csv

    c = create_app(runs_root).test_client()
    with (runs_root / "nb201-gold" / "rollouts.csv").open() as f:
        lat = sorted(float(r["latency_ms"]) for r in csv.DictReader(f))
    page = c.get("/run/nb201-gold?sort=latency_ms&desc=0&page=1").get_data(as_text=True)
    body = page.split('id="rollouts-table"')[1].split("</table>")[0]
    assert body.count("<tr>") == 1 + min(PAGE_SIZE, len(lat))
    assert f"<td>{lat[0]:.5g}</td>" in body
    assert "page 1 of 1" in page
    assert c.get("/run/nb201-gold?page=x&sort=__class__").status_code == 200


def test_nothing_outside_the_folders_is_reachable(runs_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "config.yaml").write_text("trainer: {steps: 1}\n")
    link = runs_root / "escape"
    os.symlink(outside, link)
    try:
        c = create_app(runs_root).test_client()
        assert "escape" not in c.get("/").get_data(as_text=True)
        for url in ("/run/escape", "/run/../secret", "/run/%2e%2e/secret", "/run/nb201-gold/../../secret",
                    "/run//etc/passwd", "/model/../../etc", "/static/../app.py", "/static/runs.html",
                    "/api/run/..%2Fsecret/status"):
            assert c.get(url, follow_redirects=True).status_code == 404, url
        for method in (c.post, c.put, c.delete):
            assert method("/run/nb201-gold").status_code == 405
        assert c.get("/static/plotly.min.js").status_code == 200
    finally:
        link.unlink()


def test_store_page_shows_coverage_and_flags(shipped_store: tuple[Path, Path]) -> None:
    from hwnas.store import Store

    store, models_root = shipped_store
    with Store(store, readonly=True) as st:
        s = st.summary()
    page = create_app(models_root, store).test_client().get("/store").get_data(as_text=True)
    assert f"{s['primitives']}/{s['primitives']}" in page  # every primitive measured on the one device
    assert f"Flagged measurements ({s['flagged']}" in page


def test_cost_model_predicted_vs_measured(shipped_store: tuple[Path, Path]) -> None:
    store, models_root = shipped_store
    c = create_app(models_root, store).test_client()
    assert "cm/linear1" in c.get("/models").get_data(as_text=True)
    page = c.get("/model/cm/linear1").get_data(as_text=True)
    assert "Predicted vs measured (40 networks" in page and "Per-kernel breakdown" in page
    assert c.get("/model/cm-nope").status_code == 404
