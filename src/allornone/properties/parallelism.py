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
    ``L[:, b_i] - L[:, a_i] = lam (L[:, b_j] - L[:, a_j])`` (0 = exactly parallel).

Every statistic is the mean over pairs ``i < j``; the baseline is the same statistic on
random token pairs (same number of pairs, seeded, averaged over ``baseline_draws`` draws).

All-or-none: raw parallelism is all-or-none (among models with ``M = R^d``) iff
``M = R^d``; ``condition_size`` is the relative norm of ``P_{M^perp} D``, the part of the
differences that an equivalent model could change at will.

:func:`context_parallelism` mirrors all this for context differences ``f(x1) - f(x2)``
(rows of ``L``, ``Sigma_g``, ``N``); :func:`analogy_accuracy` is the classic 3CosAdd test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import AllOrNoneError
from ..linalg import r_factor
from ..predictor import NextTokenPredictor
from ..structure import Structure, structure
from ._common import check_model, default_tol, resolve_one, resolve_pairs
from ._result import PropertyResult

Pair = tuple[Any, Any]

RAW_STATS = ("euclid_cos", "causal_cos_raw")
IDENTIFIED_STATS = ("logodds_corr", "causal_cos", "logratio_residual")


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
    Rg = r_factor(G, shift=G.mean(axis=0))
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
    Rg = r_factor(G, shift=G.mean(axis=0))  # centred G0: rows of the centred L
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


def _baseline(vectors: np.ndarray, m: int, side: _Side, draws: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    n = vectors.shape[0]
    acc: dict[str, list[float]] = {}
    for _ in range(draws):
        a = rng.integers(0, n, size=m)
        b = (a + rng.integers(1, n, size=m)) % n  # b != a
        raw, ident, _ = _family_stats(vectors[b] - vectors[a], side)
        for key, val in {**raw, **ident}.items():
            acc.setdefault(key, []).append(val)
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
    transport_side: str,
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
    base = _baseline(vectors, len(idx), side, baseline_draws, seed) if baseline_draws else {}
    verdict = dim_s == d
    cond = (
        f"{side.space_name} = R^d (dim {side.space_name} = {dim_s}, d = {d}); condition_size = "
        f"||P_{{{side.space_name}^perp}} D|| / ||D||"
    )

    def _transport(w: np.ndarray, eq: Any) -> np.ndarray:
        return eq.map_g(w) if transport_side == "g" else eq.map_f(w)

    return PropertyResult(
        property="parallelism",
        name=name,
        raw=raw,
        identified=ident,
        all_or_none=bool(verdict),
        condition=cond,
        condition_size=size,
        tol=tol,
        baseline=base,
        excluded=excluded,
        details=details,
        witness=direction,
        _transport=_transport,
    )


# ---------------------------------------------------------------------- public API
def parallelism(
    model: NextTokenPredictor,
    pairs: Sequence[Pair],
    *,
    name: str = "pairs",
    baseline_draws: int = 20,
    seed: int = 0,
    tol: float | None = None,
    structure_: Structure | None = None,
    _side: _Side | None = None,
) -> PropertyResult:
    """Parallelism of unembedding differences ``g(b) - g(a)`` for one family of token pairs.

    Parameters
    ----------
    model : NextTokenPredictor (F n x d, G V x d)
    pairs : sequence of (a, b)
        Token indices or labels. Unknown tokens, identical tokens and repeated pairs are
        dropped and recorded in ``excluded``; at least 2 pairs must remain.
    baseline_draws : int
        Random-pair draws for the chance baseline (0 = none).
    seed : int
        Seed of the baseline pairs.
    tol : float, optional
        Tolerance recorded with the verdict (default ``sqrt(eps)``).

    Returns
    -------
    PropertyResult
        ``raw``: ``euclid_cos``, ``causal_cos_raw``; ``identified``: ``logodds_corr``,
        ``causal_cos``, ``logratio_residual`` (means over pairs i < j); ``baseline``: the same
        on random pairs; ``witness``: the concept direction ``mean_i D_i`` (d,), carried by
        ``transport(eq)`` with ``eq.map_g``; ``details``: the per-pair matrices.
    """
    check_model(model)
    st = structure_ if structure_ is not None else structure(model)
    side = _side if _side is not None else _g_side(model, st)
    idx, excluded = resolve_pairs(model, pairs)
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
        side=side,
        baseline_draws=baseline_draws,
        seed=seed,
        tol=default_tol(model, tol),
        labels=labels,
        transport_side="g",
    )


def parallelism_families(
    model: NextTokenPredictor,
    families: Mapping[str, Sequence[Pair]],
    *,
    baseline_draws: int = 20,
    seed: int = 0,
    tol: float | None = None,
) -> dict[str, PropertyResult]:
    """:func:`parallelism` for several named families, sharing the factorisations.

    Families with fewer than 2 valid pairs raise; filter them first if that is expected.
    """
    check_model(model)
    if not families:
        raise AllOrNoneError("families is empty: pass {name: [(a, b), ...]}")
    st = structure(model)
    side = _g_side(model, st)
    return {
        fam: parallelism(
            model,
            pairs,
            name=fam,
            baseline_draws=baseline_draws,
            seed=seed,
            tol=tol,
            structure_=st,
            _side=side,
        )
        for fam, pairs in families.items()
    }


def context_parallelism(
    model: NextTokenPredictor,
    pairs: Sequence[Pair],
    *,
    name: str = "context pairs",
    baseline_draws: int = 20,
    seed: int = 0,
    tol: float | None = None,
    structure_: Structure | None = None,
) -> PropertyResult:
    """Parallelism of context differences ``f(x2) - f(x1)`` (the mirror of :func:`parallelism`).

    ``pairs`` are (x1, x2) context indices or labels. Identified statistics use the rows of
    the centred ``L`` (``logodds_corr`` = correlation across tokens of
    ``L[x2, :] - L[x1, :]`` = cosine under ``Sigma_g``; ``logratio_residual`` the best-lam
    residual of those rows) and the causal inner product on ``e_f`` (whitened by
    ``Cov(e_f)``). The condition is ``N = R^d``; the witness is carried by ``eq.map_f``.
    """
    check_model(model)
    st = structure_ if structure_ is not None else structure(model)
    side = _f_side(model, st)
    idx, excluded = resolve_pairs(model, pairs, rows=True)
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
        side=side,
        baseline_draws=baseline_draws,
        seed=seed,
        tol=default_tol(model, tol),
        labels=labels,
        transport_side="f",
    )


# ---------------------------------------------------------------------- analogies
@dataclass(eq=False)
class AnalogyResult:
    """3CosAdd accuracy per section (raw statistic of one model's coordinates: NOT identified).

    Attributes
    ----------
    accuracy : dict[str, float]
        Per section, plus ``"overall"`` (over all evaluated questions).
    counts : dict[str, int]
        Evaluated questions per section (and overall).
    predictions : dict[str, ndarray]
        Predicted token index per evaluated question, per section.
    excluded : list[dict]
        Questions dropped (unknown tokens, degenerate vectors) and why.
    """

    accuracy: dict[str, float]
    counts: dict[str, int]
    predictions: dict[str, np.ndarray] = field(repr=False)
    excluded: list[dict] = field(default_factory=list)


def analogy_accuracy(
    G: NextTokenPredictor | np.ndarray,
    questions: Mapping[str, Sequence[Sequence[Any]]] | Sequence[Sequence[Any]],
    *,
    center: bool = False,
    chunk: int = 8192,
) -> AnalogyResult:
    """Mikolov's 3CosAdd analogy accuracy on unembedding rows.

    For ``a : b :: c : d`` the answer is ``argmax_y cos(g(y), g^(b) - g^(a) + g^(c))`` over the
    whole vocabulary except ``a``, ``b``, ``c`` (``g^`` = unit-normalised rows), as in
    word2vec / gensim ``most_similar``. Correct when it equals ``d``.

    Parameters
    ----------
    G : NextTokenPredictor or ndarray (V, d)
        A predictor (labels allowed in ``questions``) or an unembedding matrix (indices only).
    questions : {section: [(a, b, c, d), ...]} or [(a, b, c, d), ...]
        Token indices or labels; a plain list is the section ``"all"``.
    center : bool
        Subtract the vocabulary mean from ``G`` first (default False: raw rows).
    chunk : int
        Vocabulary rows scored at a time (memory ``chunk x n_questions``).
    """
    if isinstance(G, NextTokenPredictor):
        model: NextTokenPredictor | None = G
        mat = G.G
    else:
        model = None
        mat = np.asarray(G, dtype=np.float64)
        if mat.ndim != 2:
            raise AllOrNoneError(f"G must be a (V, d) matrix, got shape {mat.shape}")
    if center:
        mat = mat - mat.mean(axis=0)
    if isinstance(questions, Mapping):
        sections = dict(questions)
    else:
        sections = {"all": list(questions)}
    if not sections or all(len(q) == 0 for q in sections.values()):
        raise AllOrNoneError("questions is empty: pass (a, b, c, d) 4-tuples")
    norms = np.linalg.norm(mat, axis=1)
    unit = np.divide(mat, norms[:, None], out=np.zeros_like(mat), where=norms[:, None] > 0)
    V = mat.shape[0]
    accuracy: dict[str, float] = {}
    counts: dict[str, int] = {}
    preds: dict[str, np.ndarray] = {}
    excluded: list[dict] = []
    all_ok = 0
    all_n = 0
    for sec, qs in sections.items():
        idx = []
        for q in qs:
            if isinstance(q, str) or len(q) != 4:
                raise AllOrNoneError(f"analogy questions must be 4-tuples, got {q!r}")
            ii = [_tok(model, t, V) for t in q]
            if any(i is None for i in ii):
                excluded.append({"item": tuple(q), "section": sec, "reason": "token not found"})
            elif any(norms[i] == 0 for i in ii[:3]):
                excluded.append({"item": tuple(q), "section": sec, "reason": "zero vector"})
            else:
                idx.append(ii)
        if not idx:
            accuracy[sec], counts[sec], preds[sec] = float("nan"), 0, np.zeros(0, dtype=int)
            continue
        Q = np.array(idx, dtype=int)
        target = unit[Q[:, 1]] - unit[Q[:, 0]] + unit[Q[:, 2]]
        best = np.full(len(Q), -np.inf)
        arg = np.zeros(len(Q), dtype=int)
        rows = np.arange(len(Q))
        for start in range(0, V, chunk):
            S = unit[start : start + chunk] @ target.T  # (chunk, q)
            for j in range(3):  # exclude the query words
                inside = (Q[:, j] >= start) & (Q[:, j] < start + chunk)
                S[Q[inside, j] - start, rows[inside]] = -np.inf
            m = S.argmax(axis=0)
            val = S[m, rows]
            better = val > best
            best[better], arg[better] = val[better], m[better] + start
        ok = arg == Q[:, 3]
        accuracy[sec], counts[sec], preds[sec] = float(ok.mean()), len(Q), arg
        all_ok += int(ok.sum())
        all_n += len(Q)
    accuracy["overall"] = all_ok / all_n if all_n else float("nan")
    counts["overall"] = all_n
    return AnalogyResult(accuracy=accuracy, counts=counts, predictions=preds, excluded=excluded)


def _tok(model: NextTokenPredictor | None, t: Any, V: int) -> int | None:
    if model is not None:
        return resolve_one(model, t)
    if isinstance(t, (int, np.integer)) and -V <= int(t) < V:
        return int(t) % V
    if isinstance(t, str):
        raise AllOrNoneError("token labels need a NextTokenPredictor; a bare G takes indices")
    return None
