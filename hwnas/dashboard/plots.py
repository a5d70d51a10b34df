"""Plotly figures of the dashboard, as plain JSON-able dicts (plotly.js draws them).

Why dicts and SVG traces: the page must load fast for a 10,000-rollout run and draw in
any browser, GPU or not, so no WebGL (``scattergl``) and no figure objects built in
Python; the cloud of dominated points is thinned to at most :data:`MAX_CLOUD` (every
front point is always drawn, with its architecture on hover).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from hwnas.dashboard.runs import Rollouts, front_of

#: Most dominated points drawn behind a front (evenly thinned beyond that).
MAX_CLOUD = 2000


def _layout(x: str, y: str, title: str = "") -> dict[str, Any]:
    return {"title": {"text": title}, "xaxis": {"title": {"text": x}}, "yaxis": {"title": {"text": y}},
            "margin": {"l": 60, "r": 20, "t": 40 if title else 20, "b": 50}, "hovermode": "closest",
            "legend": {"orientation": "h"}}


def _clean(v: float) -> float | None:
    return v if math.isfinite(v) else None


def pareto_figure(ro: Rollouts, name: str = "") -> dict[str, Any]:
    """All evaluated points (thinned) and the front, each front point labelled with its
    architecture; trace 1 is the front (the browser tests count its points)."""
    x, y, front = front_of(ro)
    if x is None or y is None:
        return {"data": [], "layout": _layout("", "", "no hardware metric and accuracy to plot")}
    xs, ys = ro.metrics[x], ro.metrics[y]
    on_front = set(front)
    rest = [i for i in range(len(ro)) if i not in on_front and math.isfinite(xs[i]) and math.isfinite(ys[i])]
    stride = max(1, math.ceil(len(rest) / MAX_CLOUD))
    cloud = rest[::stride]
    data = [
        {"type": "scatter", "mode": "markers", "name": f"evaluated ({len(rest)}" +
         (f", {len(cloud)} drawn)" if stride > 1 else ")"),
         "x": [xs[i] for i in cloud], "y": [ys[i] for i in cloud],
         "text": [f"step {ro.steps[i]}" + ("" if ro.feasible[i] else " (infeasible)") for i in cloud],
         "hoverinfo": "x+y+text", "marker": {"color": "#9aa5b1", "size": 5, "opacity": 0.6}},
        {"type": "scatter", "mode": "lines+markers", "name": f"Pareto front ({len(front)})",
         "x": [xs[i] for i in front], "y": [ys[i] for i in front],
         "text": [ro.arch[i] for i in front], "hoverinfo": "x+y+text",
         "line": {"shape": "hv", "color": "#d1495b"}, "marker": {"color": "#d1495b", "size": 9}},
    ]
    return {"data": data, "layout": _layout(x, y, name)}


def fronts_figure(runs: Sequence[tuple[str, Rollouts]], title: str = "") -> dict[str, Any]:
    """The fronts of several runs on one plot (comparison, per-device fronts)."""
    data = []
    xlab = ylab = ""
    for name, ro in runs:
        x, y, front = front_of(ro)
        if x is None or y is None:
            continue
        xlab, ylab = xlab or x, ylab or y
        data.append({"type": "scatter", "mode": "lines+markers", "name": f"{name} ({len(front)})",
                     "x": [ro.metrics[x][i] for i in front], "y": [ro.metrics[y][i] for i in front],
                     "text": [ro.arch[i] for i in front], "hoverinfo": "x+y+text+name", "line": {"shape": "hv"}})
    return {"data": data, "layout": _layout(xlab, ylab, title)}


def progress_figure(ro: Rollouts) -> dict[str, Any]:
    """Best feasible reward so far against the step (the search's learning curve)."""
    rewards = ro.metrics.get("reward", [])
    best, xs, ys = -math.inf, [], []
    for i, r in enumerate(rewards):
        if ro.feasible[i] and math.isfinite(r) and r > best:
            best = r
            xs.append(ro.steps[i])
            ys.append(r)
    if xs and ro.steps:
        xs.append(max(ro.steps))
        ys.append(best)
    return {"data": [{"type": "scatter", "mode": "lines", "x": xs, "y": ys, "name": "best reward",
                      "line": {"shape": "hv"}}], "layout": _layout("step", "best feasible reward")}


def predicted_figure(points: Sequence[dict[str, Any]], unit: str) -> dict[str, Any]:
    """Predicted against measured, with the identity line."""
    if not points:
        return {"data": [], "layout": _layout("measured", "predicted")}
    m = [p["measured"] for p in points]
    pr = [p["predicted"] for p in points]
    lo, hi = min(m + pr), max(m + pr)
    return {"data": [
        {"type": "scatter", "mode": "markers", "name": "networks", "x": m, "y": pr,
         "text": [p["network"][:12] for p in points], "hoverinfo": "x+y+text"},
        {"type": "scatter", "mode": "lines", "name": "predicted = measured", "x": [lo, hi], "y": [lo, hi],
         "line": {"dash": "dot", "color": "#888"}, "hoverinfo": "skip"}],
        "layout": _layout(f"measured ({unit})", f"predicted ({unit})")}


def breakdown_figure(nodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-node latency: the primitive alone and as a block inside the network."""
    labels = [f"{n['i']}: {n['op']}" for n in nodes]
    data = [{"type": "bar", "name": "primitive alone (table)", "x": labels,
             "y": [n["alone_ms"] for n in nodes], "text": [n["key"] for n in nodes], "hoverinfo": "y+text",
             "textposition": "none"}]
    if any(n["in_network_ms"] is not None for n in nodes):
        data.append({"type": "bar", "name": "block inside the network", "x": labels,
                     "y": [n["in_network_ms"] for n in nodes], "hoverinfo": "y"})
    lay = _layout("node", "latency (ms)")
    lay["barmode"] = "group"
    return {"data": data, "layout": lay}


__all__ = ["MAX_CLOUD", "breakdown_figure", "fronts_figure", "pareto_figure", "predicted_figure",
           "progress_figure"]
