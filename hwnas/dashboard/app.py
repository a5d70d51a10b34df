"""The dashboard's Flask app: read-only pages over a runs folder and an optional store.

Why Flask: a well-kept, small WSGI framework whose test client lets the tests and the
load benchmark call pages without a socket. Every route is a GET; every name in a URL
(a run, a cost model) is looked up in a listing made from the given folders, never
joined to a path, so nothing outside them can be reached; the only file served from
elsewhere is plotly.js from the installed ``plotly`` package (no internet needed).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hwnas.dashboard import plots
from hwnas.dashboard.runs import RunsFolder, front_of
from hwnas.dashboard.stores import breakdown, find_cost_models, model_meta, predicted_vs_measured, store_view
from hwnas.errors import InputError

#: Rollouts per page of a run's table.
PAGE_SIZE = 50


def _flask() -> Any:
    try:
        import flask
    except ImportError:
        raise InputError("hwnas dashboard needs Flask and Plotly: pip install 'hwnas[dashboard]'") from None
    return flask


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the plotly Python package."""
    try:
        import plotly
    except ImportError:
        raise InputError("hwnas dashboard needs Plotly: pip install 'hwnas[dashboard]'") from None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise InputError(f"{path}: missing from the plotly package; reinstall it (pip install 'hwnas[dashboard]')")
    return path


def create_app(runs_dir: str | Path, store: str | Path | None = None) -> Any:
    """The app for ``runs_dir`` (must exist) and an optional cost store (checked read-only)."""
    flask = _flask()
    root = Path(runs_dir)
    if not root.is_dir():
        raise InputError(f"--runs {root}: no such folder (give the folder `hwnas search` writes runs into)")
    store_path = Path(store) if store is not None else None
    if store_path is not None:
        from hwnas.dashboard.stores import open_store

        open_store(store_path).close()  # a file that is not a store fails here, in one line
    js = plotly_js()
    app = flask.Flask("hwnas.dashboard", template_folder=str(Path(__file__).parent / "templates"))
    app.config.update(HWNAS_RUNS=RunsFolder(root), HWNAS_ROOT=root.resolve(), HWNAS_STORE=store_path)
    _routes(app, flask, js)
    return app


def _run_or_404(flask: Any, runs: RunsFolder, run_id: str) -> Path:
    found = runs.find().get(run_id)
    if found is None:
        flask.abort(404)
    return found


def _routes(app: Any, flask: Any, js: Path) -> None:
    runs: RunsFolder = app.config["HWNAS_RUNS"]
    render = flask.render_template

    @app.after_request
    def _headers(resp: Any) -> Any:
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self' 'unsafe-inline' "
                                                   "'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
                                                   "img-src 'self' data:; connect-src 'self'")
        return resp

    @app.get("/static/plotly.min.js")
    def _plotly() -> Any:
        return flask.send_file(js, mimetype="text/javascript", max_age=3600)

    @app.get("/favicon.ico")
    def _favicon() -> Any:
        return flask.Response(status=204)

    @app.get("/")
    def index() -> Any:
        rows = [{"id": rid, **runs.status(path)} for rid, path in runs.find().items()]
        return render("runs.html", rows=rows, root=str(app.config["HWNAS_ROOT"]),
                      store=app.config["HWNAS_STORE"])

    @app.get("/run/<path:run_id>")
    def run_page(run_id: str) -> Any:
        path = _run_or_404(flask, runs, run_id)
        ro = runs.rollouts(path)
        table = _table(ro, flask.request.args)
        return render("run.html", run_id=run_id, status=runs.status(path), table=table,
                      pareto=plots.pareto_figure(ro), curve=plots.progress_figure(ro),
                      front_size=len(front_of(ro)[2]))

    @app.get("/api/run/<path:run_id>/status")
    def run_status(run_id: str) -> Any:
        path = _run_or_404(flask, runs, run_id)
        st = runs.status(path)
        st["front"] = len(front_of(runs.rollouts(path))[2])
        return flask.jsonify(st)

    @app.get("/api/run/<path:run_id>/figures")
    def run_figures(run_id: str) -> Any:
        ro = runs.rollouts(_run_or_404(flask, runs, run_id))
        return flask.jsonify({"pareto": plots.pareto_figure(ro), "curve": plots.progress_figure(ro)})

    _compare_routes(app, flask)
    _store_routes(app, flask)


def _compare_routes(app: Any, flask: Any) -> None:
    runs: RunsFolder = app.config["HWNAS_RUNS"]
    render = flask.render_template

    @app.get("/compare")
    def compare() -> Any:
        found = runs.find()
        chosen = [r for r in flask.request.args.getlist("run") if r in found][:8]
        items = [(r, runs.rollouts(found[r])) for r in chosen]
        rows = [{"id": r, **runs.status(found[r]), **_best(ro)} for r, ro in items]
        return render("compare.html", rows=rows, all_runs=list(found), chosen=chosen,
                      fig=plots.fronts_figure(items, "Pareto fronts"))

    @app.get("/devices")
    def devices() -> Any:
        groups: dict[str, list[tuple[str, Any]]] = {}
        for rid, path in runs.find().items():
            label = runs.status(path)["device"] or "(no hardware objective)"
            groups.setdefault(label, []).append((rid, runs.rollouts(path)))
        figs = [{"device": d, "runs": [r for r, _ in items], "fig": plots.fronts_figure(items, d)}
                for d, items in sorted(groups.items())]
        return render("devices.html", figs=figs)


def _store_routes(app: Any, flask: Any) -> None:
    render = flask.render_template
    root: Path = app.config["HWNAS_ROOT"]

    @app.get("/store")
    def store_page() -> Any:
        store = app.config["HWNAS_STORE"]
        return render("store.html", view=store_view(store) if store is not None else None)

    @app.get("/models")
    def models() -> Any:
        rows = [{"id": mid, **model_meta(path)} for mid, path in find_cost_models(root).items()]
        return render("models.html", rows=rows)

    @app.get("/model/<path:model_id>")
    def model_page(model_id: str) -> Any:
        path = find_cost_models(root).get(model_id)
        if path is None:
            flask.abort(404)
        store = app.config["HWNAS_STORE"]
        pvm = predicted_vs_measured(path, store)
        bd = breakdown(path, store, flask.request.args.get("net")) if store is not None and pvm["points"] else None
        return render("model.html", model_id=model_id, pvm=pvm, bd=bd,
                      fig=plots.predicted_figure(pvm["points"], pvm["meta"]["unit"] or "ms"),
                      bd_fig=plots.breakdown_figure(bd["nodes"]) if bd else None)


def _best(ro: Any) -> dict[str, Any]:
    rewards = [r for r, ok in zip(ro.metrics.get("reward", []), ro.feasible) if ok and math.isfinite(r)]
    x, y, front = front_of(ro)
    return {"best_reward": max(rewards) if rewards else None, "front": len(front), "x": x or "", "y": y or ""}


def _table(ro: Any, args: Any) -> dict[str, Any]:
    """One page of the rollouts table, sorted by a known column (server-side: the page
    holds PAGE_SIZE rows whatever the run's size)."""
    n = len(ro)
    sort = args.get("sort", "step")
    desc = args.get("desc", "0") == "1"
    cols = ["step", "arch_str", "feasible", *ro.metrics]
    if sort in ro.metrics:
        vals = ro.metrics[sort]
        order = sorted(range(n), key=lambda i: (not math.isfinite(vals[i]), -vals[i] if desc else vals[i]))
    else:
        sort = "step"
        order = list(range(n))[::-1] if desc else list(range(n))
    pages = max(1, math.ceil(n / PAGE_SIZE))
    try:
        page = min(max(1, int(args.get("page", "1"))), pages)
    except ValueError:
        page = 1
    idx = order[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    rows = [[ro.steps[i], ro.arch[i], "yes" if ro.feasible[i] else "no",
             *[_fmt(ro.metrics[c][i]) for c in ro.metrics]] for i in idx]
    return {"cols": cols, "rows": rows, "page": page, "pages": pages, "sort": sort, "desc": desc, "n": n}


def _fmt(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.5g}"


__all__ = ["PAGE_SIZE", "create_app", "plotly_js"]
