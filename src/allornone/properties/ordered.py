"""Cyclic and ordered concepts (THEORY.md 11): do months, weekdays lie on a closed curve in
order, do numbers and years lie on a line in order, and which of that geometry is a fact of
the distribution.

Items are tokens (``side="g"``: their unembeddings ``g(y_i)``) or contexts (``side="f"``:
``f(x_i)``) in their order, a cycle (months, weekdays) or a line (numbers, years). The same
statistics are computed on two point sets:

- raw (NOT identified): the vectors themselves, in the Euclidean metric of this model's
  coordinates;
- identified: the items' log-odds, ``L[:, y_i]`` over the contexts (g side, centred over the
  contexts: the ``Cov(f)`` metric) or ``L[x_i, :]`` over the tokens (f side, centred ``g0``),
  reached through triangular factors (never ``n x V``); equal in every equivalent model.

Cycle statistics, in the top-2 principal plane of the centred items: ``plane_energy`` (share of
the variance in that plane), ``radius_cv`` (spread of the radii around the fitted circle),
``order_agreement`` (share of items whose angular successor is their successor in the order,
either direction), ``spacing_cv`` (spread of the angular steps), ``cca_polygon`` (mean
canonical correlation of the plane with a regular m-gon in the given order: 1 when the items are
an affine image of the polygon, an ellipse with affinely equal spacing). Line statistics on the
first principal axis: ``line_energy``, ``rank_corr`` (|Spearman| with the order),
``betweenness`` (share of consecutive triples in order), ``cca_ranks`` (multiple correlation of
the plane with the ranks). ``affine_rank``: the affine dimension of the identified items.

All-or-none: raw geometry is all-or-none (among models with ``M = R^d``, g side; ``N = R^d``,
f side) iff that holds; then every equivalent model writes the items as ``B x_i`` for one
invertible ``B``, which keeps every affine invariant and changes Euclidean circularity at will.
``condition_size`` is computed as for parallelism. Baselines: random item sets of the same size,
and the same items in shuffled order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._validation import AllOrNoneError
from ..linalg import r_factor
from ..predictor import NextTokenPredictor, Pivot
from ..registry import PropertySpec, Statistic, register_property
from ..structure import Structure
from ._common import check_model, default_tol, resolve_structure
from ._result import PropertyResult, keep_spec, no_options

KINDS = ("cycle", "line")
ORDER_STATS = {"cycle": ("order_agreement", "spacing_cv", "cca_polygon"),
               "line": ("rank_corr", "betweenness", "cca_ranks")}  # fmt: skip


@dataclass(frozen=True, eq=False)
class ItemPoints:
    """The witness: the items' raw vectors (m, d) on their side, carried by the equivalence's
    map of that side (``eq.map_g`` / ``eq.map_f``)."""

    vectors: np.ndarray = field(repr=False)
    side: Literal["g", "f"] = "g"

    def transport(self, eq: Any, **options: Any) -> np.ndarray:
        no_options(options, "cyclic")
        return eq.map_g(self.vectors) if self.side == "g" else eq.map_f(self.vectors)

    def carry_spec(
        self, eq: Any, spec: Any, options: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Items are token ids or context rows, shared by equivalent models: kept."""
        return keep_spec(spec, options)


# ---------------------------------------------------------------------- geometry
def _plane(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the centred rows in their top-2 principal plane, and the spectrum."""
    Xc = X - X.mean(axis=0)
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    r = min(2, s.size)
    return U[:, :r] * s[:r], s


def _cca(Y: np.ndarray, T: np.ndarray) -> float:
    """Mean canonical correlation of two centred column sets (invariant under invertible linear
    maps of either)."""

    def basis(A: np.ndarray) -> np.ndarray:
        A = A - A.mean(axis=0)
        U, s, _ = np.linalg.svd(A, full_matrices=False)
        keep = s > (s[0] * 1e-10 if s.size and s[0] > 0 else np.inf)
        return U[:, keep]

    Qy, Qt = basis(Y), basis(T)
    if Qy.shape[1] == 0 or Qt.shape[1] == 0:
        return 0.0
    c = np.linalg.svd(Qy.T @ Qt, compute_uv=False)
    return float(np.clip(c, 0.0, 1.0).sum() / Qt.shape[1])


def _polygon(m: int) -> np.ndarray:
    t = 2 * np.pi * np.arange(m) / m
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _cycle(X: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    m = X.shape[0]
    Y, s = _plane(X)
    energy = float((s[:2] ** 2).sum() / (s**2).sum()) if s.size and s[0] > 0 else float("nan")
    if Y.shape[1] < 2:
        Y = np.hstack([Y, np.zeros((m, 2 - Y.shape[1]))])
    A = np.hstack([Y, np.ones((m, 1))])  # Kasa circle fit: x^2 + y^2 + a x + b y + c = 0
    sol = np.linalg.lstsq(A, -(Y**2).sum(axis=1), rcond=None)[0]
    centre = -sol[:2] / 2
    rel = Y - centre
    radii = np.linalg.norm(rel, axis=1)
    theta = np.arctan2(rel[:, 1], rel[:, 0])
    succ = np.empty(m, dtype=int)
    by_angle = np.argsort(theta, kind="stable")
    succ[by_angle] = np.roll(by_angle, -1)
    idx = np.arange(m)
    fwd, back = float(np.mean(succ == (idx + 1) % m)), float(np.mean(succ == (idx - 1) % m))
    sign = 1.0 if fwd >= back else -1.0
    steps = np.mod(sign * (np.roll(theta, -1) - theta), 2 * np.pi)
    stats = {
        "plane_energy": energy,
        "radius_cv": float(radii.std() / radii.mean()) if radii.mean() > 0 else float("nan"),
        "order_agreement": max(fwd, back),
        "spacing_cv": float(steps.std() / steps.mean()) if steps.mean() > 0 else float("nan"),
        "cca_polygon": _cca(Y, _polygon(m)),
    }
    return stats, {"plane": Y, "centre": centre, "angles": theta}


def _line(X: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    m = X.shape[0]
    Y, s = _plane(X)
    t = Y[:, 0]
    ranks = np.arange(m, dtype=np.float64)
    rt = np.argsort(np.argsort(t, kind="stable"), kind="stable").astype(np.float64)
    rho = float(np.corrcoef(rt, ranks)[0, 1]) if np.ptp(rt) > 0 else 0.0
    mid = t[1:-1]
    between = ((t[:-2] < mid) & (mid < t[2:])) | ((t[:-2] > mid) & (mid > t[2:]))
    stats = {
        "line_energy": float(s[0] ** 2 / (s**2).sum()) if s.size and s[0] > 0 else float("nan"),
        "rank_corr": abs(rho),
        "betweenness": float(between.mean()) if between.size else float("nan"),
        "cca_ranks": _cca(Y, ranks[:, None]),
    }
    return stats, {"plane": Y}


def _affine_rank(Z: np.ndarray) -> float:
    s = np.linalg.svd(Z - Z.mean(axis=0), compute_uv=False)
    return float((s > s[0] * 1e-8).sum()) if s.size and s[0] > 0 else 0.0


# ---------------------------------------------------------------------- the property
def cyclic(
    model: NextTokenPredictor,
    spec: Sequence[Any],
    *,
    kind: str = "cycle",
    side: str = "g",
    structure: Structure | None = None,
    pivot: Pivot = "center",
    tol: float | None = None,
    seed: int = 0,
    name: str = "items",
    baseline_draws: int = 10,
) -> PropertyResult:
    """Geometry of ordered items, raw and identified, and whether the raw one is all-or-none.

    Parameters
    ----------
    model : NextTokenPredictor
    spec : the items in their order: token ids or labels (``side="g"``) or context rows or
        labels (``side="f"``); at least 4, no repeats.
    kind : "cycle" (months, weekdays) or "line" (numbers, years).
    side : "g" (tokens) or "f" (contexts).
    baseline_draws : random item sets (and shuffled orders) of the chance baselines (0: none).

    Returns
    -------
    PropertyResult
        ``raw`` / ``identified``: the statistics of the module docstring on the raw vectors /
        on the items' log-odds; ``baseline``: the identified ones on random item sets, and
        ``shuffled_*`` the order statistics of the same items in shuffled order; ``witness``:
        :class:`ItemPoints`; ``details``: the items, both planes (for plots).
    """
    model = check_model(model)
    if kind not in KINDS:
        raise AllOrNoneError(f"kind must be 'cycle' or 'line', got {kind!r}")
    if side not in ("g", "f"):
        raise AllOrNoneError(f"side must be 'g' (tokens) or 'f' (contexts), got {side!r}")
    items = list(spec)
    idx = model.col_indices(items) if side == "g" else model.row_indices(items)
    if len(idx) < 4:
        raise AllOrNoneError(f"{name}: an order needs at least 4 items, got {len(idx)}")
    first: dict[int, int] = {}
    for i, j in enumerate(idx.tolist()):
        if j in first:
            raise AllOrNoneError(
                f"{name}: item {items[i]!r} repeats item {first[j]} ({items[first[j]]!r}); "
                "list each item once"
            )
        first[j] = i
    st = resolve_structure(model, structure, pivot)
    vectors, ident_of, space, pool = _side(model, st, side, pivot)
    X = np.asarray(vectors[idx], dtype=np.float64)
    stats_of = _cycle if kind == "cycle" else _line
    raw, raw_geo = stats_of(X)
    Z = ident_of(idx)
    ident, id_geo = stats_of(Z)
    ident["affine_rank"] = _affine_rank(Z)
    Xc = X - X.mean(axis=0)
    outside = Xc - (Xc @ space) @ space.T
    norm = float(np.linalg.norm(Xc))
    size = float(np.linalg.norm(outside) / norm) if norm > 0 else 0.0
    sname, d, dim_s = ("M" if side == "g" else "N"), model.d, space.shape[1]
    if dim_s < d:  # an equivalent model may fill the missing directions with any junk
        size = max(size, float(np.sqrt((d - dim_s) / d)))
    baseline = _baseline(ident_of, stats_of, Z, len(idx), pool, baseline_draws, seed, kind)
    labels = model.tokens if side == "g" else model.contexts
    details: dict[str, Any] = {
        "kind": kind,
        "side": side,
        "items": idx.tolist(),
        "labels": [labels[i] for i in idx] if labels is not None else None,
        "plane_raw": raw_geo["plane"],
        "plane_identified": id_geo["plane"],
        f"dim_{sname}": dim_s,
        "d": d,
    }
    cond = (
        f"{sname} = R^d (dim {sname} = {dim_s}, d = {d}): then every equivalent model writes "
        f"the items as B x_i (B invertible), keeping their affine invariants; condition_size = "
        f"||P_{{{sname}^perp}} X_c|| / ||X_c||, at least sqrt(dim {sname}^perp / d)"
    )
    return PropertyResult.from_condition(
        SPEC.name,
        name,
        raw,
        ident,
        cond,
        size,
        default_tol(model, tol),
        baseline=baseline,
        details=details,
        witness=ItemPoints(vectors=X, side=side),  # type: ignore[arg-type]
    )


def _side(model: NextTokenPredictor, st: Structure, side: str, pivot: Pivot) -> tuple:
    """(raw vectors, identified coordinates of item indices, condition subspace, pool size)."""
    if side == "g":
        R = r_factor(model.F, shift=model.F.mean(axis=0))  # ||F_c u|| = ||R u||: the Cov(f) metric
        return model.G, lambda i: np.asarray(model.G[i], dtype=np.float64) @ R.T, st.M, model.V
    R = r_factor(model.G, shift=model.pivot_vector(pivot))  # rows of the centred L
    return model.F, lambda i: np.asarray(model.F[i], dtype=np.float64) @ R.T, st.N, model.n


def _baseline(
    ident_of: Any, stats_of: Any, Z: np.ndarray, m: int, pool: int, draws: int, seed: int,
    kind: str,
) -> dict[str, float]:  # fmt: skip
    """Identified statistics of random item sets (``ident_of`` of m random indices) and the
    order statistics of the items' points ``Z`` in shuffled orders."""
    if not draws:
        return {}
    rng = np.random.default_rng([seed, 7])
    rand: dict[str, list[float]] = {}
    shuf: dict[str, list[float]] = {}
    for _ in range(draws):
        if pool > m:
            other, _ = stats_of(ident_of(np.sort(rng.choice(pool, m, replace=False))))
            for k, v in other.items():
                rand.setdefault(k, []).append(v)
        mixed, _ = stats_of(Z[rng.permutation(m)])
        for k in ORDER_STATS[kind]:
            shuf.setdefault(k, []).append(mixed[k])
    out = {k: float(np.nanmean(v)) for k, v in rand.items()}
    out |= {f"shuffled_{k}": float(np.nanmean(v)) for k, v in shuf.items()}
    out["draws"] = float(draws)
    return out


def _items(det: Mapping[str, Any]) -> tuple[list[dict], list[str], list[str]] | None:
    """One row per item: its position in the raw and in the identified plane."""
    if "plane_identified" not in det:
        return None
    P_id, P_raw = np.asarray(det["plane_identified"]), np.asarray(det["plane_raw"])
    labels = det.get("labels") or det["items"]
    rows = [
        {
            "item": labels[i],
            "order": i,
            "identified.x": float(P_id[i, 0]),
            "identified.y": float(P_id[i, 1]) if P_id.shape[1] > 1 else 0.0,
            "raw.x": float(P_raw[i, 0]),
            "raw.y": float(P_raw[i, 1]) if P_raw.shape[1] > 1 else 0.0,
        }
        for i in range(len(labels))
    ]
    return rows, ["identified.x", "identified.y"], ["raw.x", "raw.y"]


_MEANING = {
    "plane_energy": "share of the centred items' variance in their top-2 principal plane",
    "radius_cv": "spread (std / mean) of the items' distances to the circle fitted in that plane",
    "order_agreement": "share of items whose angular successor is their successor in the order "
    "(either direction; 1 = in order around the curve)",
    "spacing_cv": "spread (std / mean) of the angular steps between consecutive items",
    "cca_polygon": "mean canonical correlation of the plane with a regular polygon in the "
    "order (1 = an affine image of the polygon: an ellipse, in order, affinely equally spaced)",
    "line_energy": "share of the centred items' variance on their first principal axis",
    "rank_corr": "|Spearman correlation| of the positions on that axis with the order",
    "betweenness": "share of consecutive triples whose middle item lies between the others",
    "cca_ranks": "multiple correlation of the top-2 plane with the ranks 1..m",
}


def _stats() -> tuple[Statistic, ...]:
    out = []
    for key, text in _MEANING.items():
        out.append(Statistic(key, f"{text} (raw vectors, Euclidean)", False, "raw"))
        out.append(Statistic(key, f"{text}, in the items' log-odds (identified metric)", True))
    out.append(Statistic("affine_rank", "affine dimension of the items' log-odds", True))
    for keys in ORDER_STATS.values():
        for key in keys:
            out.append(
                Statistic(
                    f"shuffled_{key}",
                    f"identified '{key}' of the same items in a shuffled order (mean over the "
                    "draws): the chance level of the order",
                    True,
                    "baseline",
                )
            )
    out.append(Statistic("draws", "random draws the baselines average over", None, "baseline"))
    return tuple(out)


SPEC = register_property(
    PropertySpec(
        name="cyclic",
        title="Cyclic and ordered concepts",
        note="Do months and weekdays lie on a closed curve in order, numbers and years on a "
        "line? Euclidean circularity of f or g (equal radii, equal angles in a PCA plane) is "
        "not identified; the same geometry of the items' log-odds is. Affine invariants (order "
        "around the curve, canonical correlation with a regular polygon) of the raw vectors "
        "are all-or-none iff M = R^d (tokens) or N = R^d (contexts).",
        statistics=_stats(),
        headline="cca_polygon",
        headline_raw="radius_cv",
        function=cyclic,
        witness=ItemPoints,
        protected_raw=(),
        items=_items,
        baseline_of="random item sets of the same size",
    )
)
