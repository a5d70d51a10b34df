"""Which k networks to measure on a new device: a D-optimal plan in the base's embedding.

Why D-optimality (and not random shots, nor k-center diversity): the few-shot
adaptation (:mod:`hwnas.cost_models.adapt`) is a *linear* model of the new device's log
latency on the base's per-source-device outputs, ``t ≈ b + Z @ w``. For a linear model
the uncertainty of ``(b, w)`` after measuring a set S of networks is governed by the
information matrix ``M(S) = P + Σ_{i∈S} x_i x_iᵀ`` with ``x_i = [1, z_i]``, and its
determinant is the inverse volume of the confidence ellipsoid of the coefficients. The
adaptation is ridge-regularised, so ``P`` is the matching prior precision (a Bayesian
D-optimal design): directions in which the source devices barely disagree (tiny spread
of ``z``) carry little information per network and do not drag the plan towards odd
architectures, while the main axis (fast vs slow) and the real contrasts between device
families (memory- vs compute-bound) are covered. k-center diversity would spread shots
evenly in a space whose metric has nothing to do with what the fit needs.

The greedy algorithm adds, one at a time, the candidate with the largest
``log det`` gain ``log(1 + xᵀ M⁻¹ x)`` and updates ``M⁻¹`` by Sherman-Morrison: the
log-determinant is submodular in S, so greedy is within a constant factor of the best
set, in O(n k D²) for n candidates. Ties are broken by a seeded permutation, so a plan
is deterministic given its seed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.cost_models.adapt import MIN_SHOTS
from hwnas.errors import CostModelError, InputError
from hwnas.primitives import NetworkSpec

log = logging.getLogger(__name__)

#: Prior precision of the slopes (the base's outputs are standardised log latencies, so 1.0
#: is the middle of the adaptation's ridge strengths, :data:`hwnas.cost_models.adapt.ALPHAS`).
PRIOR = 1.0
#: Architectures sampled from the space when no candidate list is given.
DEFAULT_CANDIDATES = 2000


def d_optimal(Z: np.ndarray, k: int, *, prior: float = PRIOR, seed: int = 0) -> tuple[list[int], list[float]]:
    """Greedy Bayesian D-optimal choice of ``k`` rows of ``Z`` (n, D) for the regressors
    ``[1, z - mean(z)]``: the chosen row indices in order and each one's log-det gain."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or not np.isfinite(Z).all():
        raise CostModelError(f"plan: the embedding must be a finite (networks, devices) matrix, got shape {Z.shape}")
    n = Z.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CostModelError(f"plan: K must be a positive integer, got {k!r}")
    if k > n:
        raise CostModelError(f"plan: K = {k} is larger than the {n} candidate architectures; give K <= {n} or more "
                             "candidates")
    if not prior > 0:
        raise CostModelError(f"plan: the prior precision must be > 0, got {prior!r}")
    X = np.hstack([np.ones((n, 1)), Z - Z.mean(0)])
    Minv = np.diag(1.0 / np.r_[1e-6, np.full(Z.shape[1], prior)])
    # a seeded order of the candidates: argmax picks the first of equal gains in this order
    order = np.random.default_rng(seed).permutation(n)
    Xo = X[order]
    quad = np.einsum("ij,jk,ik->i", Xo, Minv, Xo)  # x^T M^-1 x for every candidate
    taken = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    gains: list[float] = []
    for _ in range(k):
        q = np.where(taken, -np.inf, quad)
        i = int(np.argmax(q))
        u = Minv @ Xo[i]
        denom = 1.0 + float(Xo[i] @ u)
        chosen.append(int(order[i]))
        gains.append(float(np.log(denom)))
        taken[i] = True
        Minv -= np.outer(u, u) / denom
        quad -= (Xo @ u) ** 2 / denom
    return chosen, gains


@dataclass(frozen=True)
class PlanRequest:
    """Where the candidates come from — a whole-network CSV (its architecture column), a
    text file of architecture strings, or ``candidates`` networks sampled from ``space``
    with ``seed`` — and where the plan goes (``out``, a folder; None writes nothing)."""

    k: int
    space: str | None = None
    space_options: Any = None
    dataset: str | Path | None = None
    arch_file: str | Path | None = None
    candidates: int | None = None
    seed: int = 0
    target: str | None = None
    out: str | Path | None = None


def _read_archs(req: PlanRequest) -> tuple[list[str], str]:
    """Architecture strings of the candidate list and where they came from."""
    from hwnas.inputs import read_csv

    if req.dataset is not None and req.arch_file is not None:
        raise InputError("plan: give the candidates as --dataset CSV or --arch-file, not both")
    if req.dataset is not None:
        p = Path(req.dataset)
        df = read_csv(p, "whole-network table")
        col = next((c for c in ("arch_str", "ops", "arch") if c in df.columns), None)
        if col is None:
            raise InputError(f"{p}: no architecture column (arch_str, ops or arch)")
        return [str(s) for s in df[col]], str(p)
    p = Path(req.arch_file)  # type: ignore[arg-type]
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the architecture file ({exc.__class__.__name__})") from None
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")], str(p)


def candidates_of(req: PlanRequest, space: str) -> tuple[list[str], list[NetworkSpec], str]:
    """The distinct candidate networks (first occurrence kept) with their strings."""
    from hwnas.config import build_space
    from hwnas.errors import HwnasError

    sp = build_space(space, req.space_options)
    if req.dataset is None and req.arch_file is None:
        n = req.candidates or DEFAULT_CANDIDATES
        rng = np.random.default_rng(req.seed)
        texts, source = [sp.to_str(sp.sample(rng)) for _ in range(n)], f"{n} architectures sampled from {space}"
    else:
        texts, source = _read_archs(req)
    archs: dict[str, tuple[str, NetworkSpec]] = {}
    for line, text in enumerate(texts, start=2 if req.dataset is not None else 1):
        try:
            net = sp.to_network(sp.from_str(text))
        except HwnasError as exc:
            raise InputError(f"{source}:{line}: {exc}") from None
        archs.setdefault(net.hash, (text, net))
    items = list(archs.values())
    if req.candidates and (req.dataset is not None or req.arch_file is not None) and req.candidates < len(items):
        keep = np.sort(np.random.default_rng(req.seed).choice(len(items), req.candidates, replace=False))
        items = [items[i] for i in keep]
    return [t for t, _ in items], [n for _, n in items], source


def _write(out: Path, rows: list[dict[str, Any]], report: dict[str, Any], target: str) -> None:
    """The plan three ways: arch strings (one a line, what ``--arch-file`` and ``hwnas predict
    --networks`` read), a JSON list of them, and a CSV to fill in with the measurements,
    which ``fit-cost --transfer-from BASE --dataset plan.csv --target COLUMN`` then reads."""
    import csv
    import json

    out.mkdir(parents=True, exist_ok=True)
    archs = [r["arch"] for r in rows]
    (out / "plan.txt").write_text("".join(a + "\n" for a in archs), encoding="utf-8")
    (out / "plan.json").write_text(json.dumps(archs, indent=1) + "\n", encoding="utf-8")
    with open(out / "plan.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", target])
        w.writerows([a, ""] for a in archs)
    (out / "plan_report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def plan_transfer(base_ref: Any, req: PlanRequest) -> dict[str, Any]:
    """``hwnas fit-cost --transfer-from BASE --plan K``: the K candidates most informative for
    the adaptation (:func:`d_optimal` on the base's outputs), with what each adds."""
    from hwnas.cost_models.transfer_model import BaseRef, load_base

    ref = BaseRef.of(base_ref)
    base, manifest = load_base(ref)
    base_space = (manifest.get("training") or {}).get("space")
    if req.space and base_space and req.space != base_space:
        raise CostModelError(f"{ref.name}: the base was fit on the {base_space!r} space, not {req.space!r}")
    space = req.space or base_space
    if not space:
        raise InputError(f"plan: {ref.name} does not record its search space; give --space")
    if isinstance(req.k, bool) or not isinstance(req.k, int) or req.k < MIN_SHOTS:
        raise InputError(f"plan: K must be an integer >= {MIN_SHOTS} (the fewest shots a transfer accepts), "
                         f"got {req.k!r}")
    texts, nets, source = candidates_of(req, space)
    if req.k > len(nets):
        raise InputError(f"plan: K = {req.k} is larger than the {len(nets)} distinct candidate architectures of "
                         f"{source}; give K <= {len(nets)} or more candidates")
    base.check_networks(nets, "candidate")
    Z = base.embed(nets)
    idx, gains = d_optimal(Z, req.k, seed=req.seed)
    ms = np.exp(base.t_mu_ + base.t_sd_ * Z[idx])
    rows = [{"rank": r + 1, "arch": texts[i], "gain": round(g, 4), "source_ms_min": round(float(m.min()), 4),
             "source_ms_max": round(float(m.max()), 4)} for r, (i, g, m) in enumerate(zip(idx, gains, ms))]
    target = req.target or "latency_ms"
    report: dict[str, Any] = {"base": ref.name, "space": space, "k": req.k, "candidates": len(nets), "source": source,
                              "seed": req.seed, "design": "greedy Bayesian D-optimal on [1, base outputs]",
                              "log_det_gain": round(float(np.sum(gains)), 4), "plan": rows}
    if req.out is not None:
        _write(Path(req.out), rows, report, target)
        report["out"] = str(req.out)
    log.info("plan from %s: %d of %d candidates", ref.name, req.k, len(nets))
    return report
