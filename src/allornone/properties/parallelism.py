"""Parallel vectors (THEORY.md 5.1): concept directions as differences of unembeddings.

For a family of token pairs ``(a_i, b_i)`` (e.g. easy->easiest, lucky->luckiest) the raw
differences are ``D_i = g(b_i) - g(a_i)`` (d-vectors; the pivot cancels). Statistics:

- raw (NOT identified): Euclidean cosines between the ``D_i``; Park et al.'s causal inner
  product (whitening by ``Cov(g)``) computed on the raw ``g``.
- identified (equal in every model with the same distribution):

  * ``logodds_corr``: cosine under ``Sigma_f`` (centred covariance of ``f`` over contexts)
    = correlation across contexts of the log-ratio columns ``L[:, b_i] - L[:, a_i]``;
  * ``causal_cos``: the causal inner product computed on the effective unembeddings ``e_g``;
  * ``logratio_residual``: relative residual of the best ``lam`` in
    ``L[:, b_i] - L[:, a_i] = lam (L[:, b_j] - L[:, a_j])`` (0 = exactly parallel);
  * ``causal_loo_auc``: Park et al.'s leave-one-out protocol under the causal inner product
    of the effective unembeddings: each pair's difference projected on the unit mean of the
    others, against the projections of random token pairs (share of comparisons won; 0.5 =
    chance). ``causal_loo_auc_raw`` (raw) is the same protocol on the raw ``g``, as Park et
    al. run it; the per-pair projections and the random pairs' quantiles are in ``details``.

Every statistic is the mean over pairs ``i < j``; the baseline is the same statistic on
random token pairs (same number of pairs, seeded, averaged over ``baseline_draws`` draws).

All-or-none: raw parallelism is all-or-none (among models with ``M = R^d``) iff
``M = R^d``; ``condition_size`` is the relative norm of ``P_{M^perp} D``, the part of the
differences that an equivalent model could change at will (measured in this model's
coordinates, so NOT identified: it moves between equivalent models when ``M != R^d``; only
the verdict ``condition_size <= tol`` is read from it).

:func:`context_parallelism` mirrors all this for context differences ``f(x1) - f(x2)``
(rows of ``L``, ``Sigma_g``, ``N``). The classic 3CosAdd test is
:func:`allornone.properties.analogy.analogy_accuracy`.

Every property shares one signature, ``name(model, spec, *, structure=None, pivot="center",
tol=None, seed=0, **options) -> PropertyResult``; here ``spec`` is the list of pairs.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._tables import off_diagonal_means
from .._validation import AllOrNoneError
from ..linalg import r_factor
from ..predictor import NextTokenPredictor, Pivot
from ..registry import PropertySpec, Statistic, register_property
from ..structure import Structure
from ._common import check_model, default_tol, resolve_pairs, resolve_structure
from ._result import PropertyResult, keep_spec, no_options

Pair = tuple[Any, Any]

RAW_STATS = ("euclid_cos", "causal_cos_raw", "causal_loo_auc_raw")
IDENTIFIED_STATS = ("logodds_corr", "causal_cos", "logratio_residual", "causal_loo_auc")

#: Random pairs of Park et al.'s leave-one-out protocol (their notebook draws 100,000).
LOO_RANDOM_PAIRS = 100_000


# ---------------------------------------------------------------------- witness
@dataclass(frozen=True, eq=False)
class ConceptDirection:
    """The witness of parallelism: the mean difference ``mean_i D_i`` (d,) of a family.

    ``side="g"``: unembedding differences (carried by ``eq.map_g``); ``side="f"``: context
    differences (carried by ``eq.map_f``).
    """

    vector: np.ndarray = field(repr=False)
    side: Literal["g", "f"] = "g"

    def transport(self, eq: Any, **options: Any) -> np.ndarray:
        """``eq.map_g(D)`` (g side) or ``eq.map_f(D)`` (f side), an array (d_b,)."""
        no_options(options, "parallelism")
        return eq.map_g(self.vector) if self.side == "g" else eq.map_f(self.vector)

    def carry_spec(
        self, eq: Any, spec: Any, options: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Token (or context) pairs are shared by equivalent models: kept."""
        return keep_spec(spec, options)


# ---------------------------------------------------------------------- geometry
@dataclass(eq=False)
class _Side:
    """Factors giving each inner product on one side (g-side: unembedding differences)."""

    sigma: np.ndarray  # (r, d): <u, v>_Sigma = (R u) . (R v)
    logratio: np.ndarray  # (r, d): uncentred log-ratio inner product
    causal_id: np.ndarray  # (d, k'): u -> whitened effective coordinates
    causal_raw: np.ndarray  # (d, r'): u -> whitened raw coordinates
    space: np.ndarray  # (d, dim): M (g-side) or N (f-side) basis
    space_name: str


def _whitener(H: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """``W`` with ``W W^T = (H^T H)^+``: cosine under ``(H^T H)^+`` = cosine of ``u W``."""
    _, s, Vt = np.linalg.svd(H, full_matrices=False)
    r = int((s > rtol * s[0]).sum()) if s.size and s[0] > 0 else 0
    return Vt[:r].T / s[:r]


def _g_side(model: NextTokenPredictor, st: Structure) -> _Side:
    F, G = model.F, model.G
    Rg = r_factor(G, shift=model.g_mean)
    return _Side(
        sigma=r_factor(F, shift=F.mean(axis=0)),
        logratio=r_factor(F),
        causal_id=st.E @ _whitener(Rg @ st.E),
        causal_raw=_whitener(Rg),
        space=st.M,
        space_name="M",
    )


def _f_side(model: NextTokenPredictor, st: Structure) -> _Side:
    F, G = model.F, model.G
    Rg = r_factor(G, shift=model.g_mean)  # centred G0: rows of the centred L
    Rf = r_factor(F, shift=F.mean(axis=0))
    return _Side(
        sigma=Rg,
        logratio=Rg,
        causal_id=st.E @ _whitener(Rf @ st.E),
        causal_raw=_whitener(Rf),
        space=st.N,
        space_name="N",
    )


def _cos_matrix(X: np.ndarray) -> np.ndarray:
    nrm = np.linalg.norm(X, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        C = (X @ X.T) / np.outer(nrm, nrm)
    C[np.outer(nrm, nrm) == 0] = np.nan
    return np.clip(C, -1.0, 1.0)


def _upper_mean(C: np.ndarray) -> float:
    iu = np.triu_indices(C.shape[0], 1)
    vals = C[iu]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


def _family_stats(D: np.ndarray, side: _Side) -> tuple[dict, dict, dict]:
    """Mean pairwise statistics of differences ``D`` (m x d) and the per-pair matrices."""
    C_euc = _cos_matrix(D)
    C_sig = _cos_matrix(D @ side.sigma.T)
    Ylr = D @ side.logratio.T
    sq = (Ylr**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lam = (Ylr @ Ylr.T) / sq[None, :]  # lam[i, j]: best lam in col_i = lam col_j
        # residual[i, j] = ||y_i - lam_ij y_j|| / ||y_i||, computed directly (not via
        # sqrt(1 - cos^2), which loses half the digits near 0)
        diff = Ylr[:, None, :] - lam[:, :, None] * Ylr[None, :, :]
        resid = np.linalg.norm(diff, axis=2) / np.sqrt(sq)[:, None]
    C_cid = _cos_matrix(D @ side.causal_id)
    C_craw = _cos_matrix(D @ side.causal_raw)
    raw = {"euclid_cos": _upper_mean(C_euc), "causal_cos_raw": _upper_mean(C_craw)}
    ident = {
        "logodds_corr": _upper_mean(C_sig),
        "causal_cos": _upper_mean(C_cid),
        "logratio_residual": _upper_mean(resid),
    }
    mats = {
        "euclid_cos": C_euc,
        "causal_cos_raw": C_craw,
        "logodds_corr": C_sig,
        "causal_cos": C_cid,
        "logratio_residual": resid,
        "logratio_lambda": lam,
        "degenerate": np.flatnonzero(sq <= 0).tolist(),
    }
    return raw, ident, mats


def _leave_one_out(
    cases: Sequence[tuple[np.ndarray, np.ndarray]], vectors: np.ndarray, n_random: int, seed: int
) -> list[dict[str, Any]]:
    """Park et al.'s leave-one-out test of concept directions under a causal inner product.

    For each case ``(D, whiten)`` (differences m x d, whitening d x r): in whitened coordinates
    ``y = D whiten`` (scaled by ``sqrt(n_vectors)``, so that inner products are those of
    ``Cov^-1`` with ``Cov`` normalised by the number of vectors, as in Park et al.), pair ``i``
    is projected on the unit mean of the *other* pairs' differences; ``n_random`` random pairs
    (uniform with replacement over all vectors, drawn once from ``seed`` and shared by every
    case, as Park et al. share theirs across concepts) are projected on the unit mean of all
    pairs. ``auc`` is the share of (pair, random pair) comparisons the held-out pair wins (ties
    count 1/2): 0.5 = no better than a random pair, 1 = every held-out pair projects above
    every random one. All random projections come from one product ``vectors @ W`` (``W`` the
    directions pulled back to d), so no ``n_random x d`` array is built.
    """
    scale = float(np.sqrt(vectors.shape[0]))
    outs: list[dict[str, Any]] = []
    dirs: list[np.ndarray] = []
    for D, whiten in cases:
        m = D.shape[0]
        Y = (D @ whiten) * scale
        total = Y.sum(axis=0)
        others = (total[None, :] - Y) / (m - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            loo = np.einsum("ij,ij->i", Y, others) / np.linalg.norm(others, axis=1)
        mnorm = float(np.linalg.norm(total))
        ok = mnorm > 0 and bool(np.isfinite(loo).all())
        outs.append({"loo_projection": loo, "ok": ok})
        dirs.append(whiten @ (total / mnorm) * scale if ok else np.zeros(D.shape[1]))
    W = np.stack(dirs, axis=1).astype(vectors.dtype, copy=False)
    proj = vectors @ W  # (n_vectors, cases), in the vectors' dtype; columns widened one by one
    rng = np.random.default_rng([seed, 1729])
    i1 = rng.integers(0, vectors.shape[0], size=n_random)
    i2 = rng.integers(0, vectors.shape[0], size=n_random)
    # values equal up to rounding are ties (an exactly parallel family ties with its own pairs
    # drawn at random; rounding must not break those ties differently in equivalent models)
    rtol = float(np.sqrt(np.finfo(vectors.dtype).eps))
    for c, out in enumerate(outs):
        if not out.pop("ok"):
            out.update(auc=float("nan"), random_mean=float("nan"), random_std=float("nan"))
            continue
        col = proj[:, c].astype(np.float64)
        rand = np.sort(col[i1] - col[i2])
        loo = out["loo_projection"]
        tol = rtol * max(float(np.abs(rand).max()), float(np.abs(loo).max()))
        below = np.searchsorted(rand, loo - tol, side="left")
        upto = np.searchsorted(rand, loo + tol, side="right")
        per_pair = (below + upto) / 2 / n_random
        out.update(
            auc=float(per_pair.mean()),
            auc_per_pair=per_pair,
            random_mean=float(rand.mean()),
            random_std=float(rand.std()),
            random_quantiles=np.quantile(rand, [0.05, 0.5, 0.95]),
        )
    return outs


def _baseline(
    vectors: np.ndarray, m: int, side: _Side, draws: int, seed: int, random_pairs: int
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    n = vectors.shape[0]
    acc: dict[str, list[float]] = {}
    cases: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(draws):
        a = rng.integers(0, n, size=m)
        b = (a + rng.integers(1, n, size=m)) % n  # b != a
        D = vectors[b] - vectors[a]
        raw, ident, _ = _family_stats(D, side)
        for key, val in {**raw, **ident}.items():
            acc.setdefault(key, []).append(val)
        cases += [(D, side.causal_raw), (D, side.causal_id)]
    if random_pairs and cases:
        loo = _leave_one_out(cases, vectors, random_pairs, seed)
        acc["causal_loo_auc_raw"] = [r["auc"] for r in loo[0::2]]
        acc["causal_loo_auc"] = [r["auc"] for r in loo[1::2]]
    out: dict[str, float] = {}
    for key, vals in acc.items():
        arr = np.array(vals)
        out[key] = float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")
        out[key + "_std"] = float(np.nanstd(arr)) if np.isfinite(arr).any() else float("nan")
    out["draws"] = float(draws)
    return out


def _result(
    *,
    kind: str,
    name: str,
    model: NextTokenPredictor,
    idx: np.ndarray,
    excluded: list[dict],
    vectors: np.ndarray,
    side: _Side,
    baseline_draws: int,
    seed: int,
    tol: float,
    labels: list | None,
    transport_side: Literal["g", "f"],
    random_pairs: int = LOO_RANDOM_PAIRS,
) -> PropertyResult:
    if len(idx) < 2:
        reasons = "; ".join(f"{e['item']!r}: {e['reason']}" for e in excluded[:5])
        raise AllOrNoneError(
            f"{kind} family {name!r} needs at least 2 valid pairs, got {len(idx)}"
            + (f" (excluded: {reasons})" if reasons else "")
        )
    D = vectors[idx[:, 1]] - vectors[idx[:, 0]]
    nz = np.linalg.norm(D, axis=1) > 0
    for i in np.flatnonzero(~nz):
        excluded.append({"item": tuple(idx[i].tolist()), "reason": "zero difference vector"})
    idx, D = idx[nz], D[nz]
    if len(idx) < 2:
        raise AllOrNoneError(
            f"{kind} family {name!r}: fewer than 2 pairs with a non-zero difference"
        )
    raw, ident, mats = _family_stats(D, side)
    if random_pairs:
        loo_raw, loo_id = _leave_one_out(
            [(D, side.causal_raw), (D, side.causal_id)], vectors, random_pairs, seed
        )
        raw["causal_loo_auc_raw"] = loo_raw["auc"]
        ident["causal_loo_auc"] = loo_id["auc"]
        mats["causal_loo_raw"] = loo_raw
        mats["causal_loo"] = loo_id
    S = side.space
    outside = D - (D @ S) @ S.T
    size = float(np.linalg.norm(outside) / np.linalg.norm(D))
    d, dim_s = model.d, S.shape[1]
    direction = D.mean(axis=0)
    per_pair = np.linalg.norm(outside, axis=1) / np.linalg.norm(D, axis=1)
    details: dict[str, Any] = {
        "pairs": idx.tolist(),
        "pair_labels": labels,
        f"dim_{side.space_name}": dim_s,
        "d": d,
        f"outside_{side.space_name}_per_pair": per_pair,
        "direction": direction,
        **mats,
    }
    base = (
        _baseline(vectors, len(idx), side, baseline_draws, seed, random_pairs)
        if baseline_draws
        else {}
    )
    sn = side.space_name
    # The condition is S = R^d. When it holds, P_{S^perp} = 0 and the size is rounding; when
    # it fails an equivalent model may give the differences any junk, so the size is at least
    # the relative dimension of S^perp (even when these differences happen to lie in S).
    if dim_s < d:
        size = max(size, float(np.sqrt((d - dim_s) / d)))
    cond = (
        f"{sn} = R^d (dim {sn} = {dim_s}, d = {d}); condition_size = ||P_{{{sn}^perp}} D|| / "
        f"||D||, at least sqrt(dim {sn}^perp / d) when {sn} != R^d"
    )
    return PropertyResult.from_condition(
        SPEC.name,
        name,
        raw,
        ident,
        cond,
        size,
        tol,
        baseline=base,
        excluded=excluded,
        details=details,
        witness=ConceptDirection(vector=direction, side=transport_side),
    )


# ---------------------------------------------------------------------- shared geometry
#: Per-structure cache of the factorisations (one QR of the vocabulary per structure and side).
_SIDES: weakref.WeakKeyDictionary[Structure, dict[str, _Side]] = weakref.WeakKeyDictionary()


def _side_of(model: NextTokenPredictor, st: Structure, which: str) -> _Side:
    """The g- or f-side factors of ``model``, computed once per :class:`Structure`.

    Cached only when ``st`` is the structure of this very predictor (``st.model is model``),
    so every family measured with the same ``structure=`` shares one factorisation.
    """
    build = _g_side if which == "g" else _f_side
    if st.model is not model:
        return build(model, st)
    cache = _SIDES.setdefault(st, {})
    if which not in cache:
        cache[which] = build(model, st)
    return cache[which]


# ---------------------------------------------------------------------- public API
def parallelism(
    model: NextTokenPredictor,
    spec: Sequence[Pair],
    *,
    structure: Structure | None = None,
    pivot: Pivot = "center",
    tol: float | None = None,
    seed: int = 0,
    name: str = "pairs",
    baseline_draws: int = 20,
    random_pairs: int = LOO_RANDOM_PAIRS,
) -> PropertyResult:
    """Parallelism of unembedding differences ``g(b) - g(a)`` for one family of token pairs.

    Parameters
    ----------
    model : NextTokenPredictor (F n x d, G V x d)
    spec : sequence of (a, b)
        The token pairs (indices or labels). Unknown tokens, identical tokens and repeated
        pairs are dropped and recorded in ``excluded``; at least 2 pairs must remain.
    structure : Structure, optional
        ``allornone.structure(model)``, to share it (and the factorisations) across calls.
    pivot : accepted for the common signature; differences of unembeddings do not depend on it.
    tol : float, optional
        Tolerance recorded with the verdict (default ``sqrt(eps)``).
    seed : int
        Seed of the baseline pairs.
    baseline_draws : int
        Random-pair draws for the chance baseline (0 = none).
    random_pairs : int
        Random token pairs of Park et al.'s leave-one-out test (default 100,000, as theirs;
        0 = skip it).

    Returns
    -------
    PropertyResult
        ``raw``: ``euclid_cos``, ``causal_cos_raw``, ``causal_loo_auc_raw`` (Park et al.'s
        leave-one-out protocol on raw g); ``identified``: ``logodds_corr``, ``causal_cos``,
        ``logratio_residual`` (means over pairs i < j), ``causal_loo_auc`` (the same protocol
        on the effective unembeddings); ``baseline``: the same
        on random pairs; ``witness``: :class:`ConceptDirection` ``mean_i D_i`` (g side),
        carried by :func:`~allornone.properties.transport` with ``eq.map_g``; ``details``:
        the per-pair matrices.
    """
    model = check_model(model)
    st = resolve_structure(model, structure, pivot)
    idx, excluded = resolve_pairs(model, spec)
    labels = (
        [(model.tokens[a], model.tokens[b]) for a, b in idx] if model.tokens is not None else None
    )
    return _result(
        kind="token",
        name=name,
        model=model,
        idx=idx,
        excluded=excluded,
        vectors=model.G,
        side=_side_of(model, st, "g"),
        baseline_draws=baseline_draws,
        random_pairs=random_pairs,
        seed=seed,
        tol=default_tol(model, tol),
        labels=labels,
        transport_side="g",
    )


def parallelism_families(
    model: NextTokenPredictor,
    spec: Mapping[str, Sequence[Pair]],
    *,
    structure: Structure | None = None,
    pivot: Pivot = "center",
    tol: float | None = None,
    seed: int = 0,
    baseline_draws: int = 20,
    random_pairs: int = LOO_RANDOM_PAIRS,
) -> dict[str, PropertyResult]:
    """:func:`parallelism` for several named families ``{name: [(a, b), ...]}``, sharing the
    structure and the factorisations.

    Families with fewer than 2 valid pairs raise; filter them first if that is expected.
    """
    model = check_model(model)
    if not spec:
        raise AllOrNoneError("families is empty: pass {name: [(a, b), ...]}")
    st = resolve_structure(model, structure, pivot)
    return {
        fam: parallelism(
            model,
            pairs,
            structure=st,
            pivot=pivot,
            tol=tol,
            seed=seed,
            name=fam,
            baseline_draws=baseline_draws,
            random_pairs=random_pairs,
        )
        for fam, pairs in spec.items()
    }


def context_parallelism(
    model: NextTokenPredictor,
    spec: Sequence[Pair],
    *,
    structure: Structure | None = None,
    pivot: Pivot = "center",
    tol: float | None = None,
    seed: int = 0,
    name: str = "context pairs",
    baseline_draws: int = 20,
    random_pairs: int = LOO_RANDOM_PAIRS,
) -> PropertyResult:
    """Parallelism of context differences ``f(x2) - f(x1)`` (the mirror of :func:`parallelism`).

    ``spec`` are (x1, x2) context indices or labels. Identified statistics use the rows of
    the centred ``L`` (``logodds_corr`` = correlation across tokens of
    ``L[x2, :] - L[x1, :]`` = cosine under ``Sigma_g``; ``logratio_residual`` the best-lam
    residual of those rows) and the causal inner product on ``e_f`` (whitened by
    ``Cov(e_f)``). The condition is ``N = R^d``; the witness (f side) is carried by
    ``eq.map_f``.
    """
    model = check_model(model)
    st = resolve_structure(model, structure, pivot)
    idx, excluded = resolve_pairs(model, spec, rows=True)
    labels = (
        [(model.contexts[a], model.contexts[b]) for a, b in idx]
        if model.contexts is not None
        else None
    )
    return _result(
        kind="context",
        name=name,
        model=model,
        idx=idx,
        excluded=excluded,
        vectors=model.F,
        side=_side_of(model, st, "f"),
        baseline_draws=baseline_draws,
        random_pairs=random_pairs,
        seed=seed,
        tol=default_tol(model, tol),
        labels=labels,
        transport_side="f",
    )


def _items(det: Mapping[str, Any]) -> tuple[list[dict], list[str], list[str]] | None:
    """One row per pair: its statistics averaged over the other pairs, its part outside the
    condition's subspace and its leave-one-out test."""
    if "pairs" not in det:
        return None
    pairs = det["pairs"]
    labels = det.get("pair_labels")
    raw_keys = [k for k in ("euclid_cos", "causal_cos_raw") if k in det]
    id_keys = [k for k in ("logodds_corr", "causal_cos", "logratio_residual") if k in det]
    means = {k: off_diagonal_means(det[k]) for k in raw_keys + id_keys}
    outside = next((v for k, v in det.items() if k.startswith("outside_")), None)
    rows = []
    for i, (a, b) in enumerate(pairs):
        row: dict[str, Any] = {
            "item": f"{labels[i][0]!r} -> {labels[i][1]!r}" if labels else f"{a} -> {b}",
            "a": int(a),
            "b": int(b),
        }
        if outside is not None:
            row["condition_size"] = float(outside[i])
        row.update({f"raw.{k}": float(means[k][i]) for k in raw_keys})
        row.update({f"identified.{k}": float(means[k][i]) for k in id_keys})
        for key, side, sfx in (("causal_loo_raw", "raw", "_raw"), ("causal_loo", "identified", "")):
            loo = det.get(key)
            if isinstance(loo, Mapping) and "auc_per_pair" in loo:  # Park et al.'s LOO test
                row[f"{side}.causal_loo_auc{sfx}"] = float(np.asarray(loo["auc_per_pair"])[i])
                row[f"{side}.causal_loo_projection{sfx}"] = float(
                    np.asarray(loo["loo_projection"])[i]
                )
        rows.append(row)
    extra = list(rows[0]) if rows else []
    ids = [f"identified.{k}" for k in id_keys]
    ids += [c for c in extra if c.startswith("identified.causal_loo_auc")]
    raws = [f"raw.{k}" for k in raw_keys] + [c for c in extra if c.startswith("raw.causal_loo_auc")]
    return rows, ids, raws


SPEC = register_property(
    PropertySpec(
        name="parallelism",
        title="Parallelism of concept directions",
        note="Do the differences g(b) - g(a) of a family point the same way? The raw "
        "Euclidean cosine is not identified; the Cov(f) cosine (the correlation, across "
        "contexts, of the log-ratio columns) is. Raw parallelism is all-or-none only when "
        "M = R^d.",
        statistics=(
            Statistic(
                "euclid_cos",
                "mean Euclidean cosine between the unembedding differences",
                False,
                "raw",
                "cosine",
            ),
            Statistic(
                "causal_cos_raw",
                "mean cosine under Park et al.'s causal inner product on raw g (Cov(g) whitening)",
                False,
                "raw",
                "cosine",
            ),
            Statistic(
                "causal_loo_auc_raw",
                "Park et al.'s leave-one-out test on raw g: share of (held-out pair, random "
                "pair) comparisons where the pair projects higher on the others' mean (0.5 = "
                "chance)",
                False,
                "raw",
                "fraction",
            ),
            Statistic(
                "logodds_corr",
                "mean cosine under Cov(f) = correlation across contexts of the log-ratio columns",
                True,
                unit="cosine",
            ),
            Statistic(
                "causal_cos",
                "causal inner product computed on the effective unembeddings",
                True,
                unit="cosine",
            ),
            Statistic(
                "logratio_residual",
                "relative residual of the best lambda in L[:,b]-L[:,a] = lambda (L[:,b']-L[:,a'])",
                True,
            ),
            Statistic(
                "causal_loo_auc",
                "Park et al.'s leave-one-out test under the causal inner product of the "
                "effective unembeddings (0.5 = chance)",
                True,
                unit="fraction",
            ),
            Statistic(
                "draws",
                "number of random draws the baseline statistics average over",
                None,
                "baseline",
            ),
            Statistic(
                "outside_M",
                "relative Euclidean size of the differences outside M, in this model's "
                "coordinates (an equivalent model can change it when M != R^d)",
                False,
                "details",
            ),
        ),
        headline="logodds_corr",
        headline_raw="euclid_cos",
        function=parallelism,
        witness=ConceptDirection,
        # raw parallelism is Euclidean: its values move under every invertible map of the
        # class (only exact parallelism, among models with M = R^d, is preserved), so no raw
        # value is protected; check_property's adversarial check still applies
        protected_raw=(),
        items=_items,
        baseline_of="random token pairs, as many as the family's",
    )
)
