"""Analogies (THEORY.md 5.1): Mikolov's 3CosAdd test, raw (Euclidean) and identified.

For ``a : b :: c : d`` the answer is the token whose unembedding is closest in cosine to
``g(b) - g(a) + g(c)``; the identified form scores the same questions under the ``Cov(f)``
inner product (correlations across contexts of the log-odds columns). Raw 3CosAdd is never
all-or-none: Euclidean cosines of ``g`` move under every invertible map of the class.

Every property shares one signature, ``name(model, spec, *, structure=None, pivot="center",
tol=None, seed=0, **options) -> PropertyResult``; here ``spec`` is the questions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._validation import AllOrNoneError, AllOrNoneTypeError
from ..linalg import r_factor
from ..predictor import NextTokenPredictor, Pivot
from ..registry import PropertySpec, Statistic, register_property
from ..structure import Structure
from ._common import default_tol, resolve_one
from ._result import PropertyResult

ANALOGY_CONDITION = (
    "none: Euclidean cosines of g are not preserved by the maps of the equivalence class "
    "(g -> A^-T g, any invertible A), so raw 3CosAdd is never all-or-none; the identified "
    "form scores the same questions under the Cov(f) inner product"
)


def analogy_accuracy(
    model: NextTokenPredictor,
    spec: Mapping[str, Sequence[Sequence[Any]]] | Sequence[Sequence[Any]],
    *,
    structure: Structure | None = None,
    pivot: Pivot = "center",
    tol: float | None = None,
    seed: int = 0,
    name: str = "analogies",
    center: bool = False,
    chunk: int = 8192,
) -> PropertyResult:
    """Mikolov's 3CosAdd analogy accuracy, raw (Euclidean) and identified (``Cov(f)``).

    For ``a : b :: c : d`` the answer is ``argmax_y cos(g(y), g^(b) - g^(a) + g^(c))`` over the
    whole vocabulary except ``a``, ``b``, ``c`` (``g^`` = unit-normalised rows), as in
    word2vec / gensim ``most_similar``. Correct when it equals ``d``. The identified form
    does the same on the rows of ``G0 R_F^T`` (``R_F`` the R factor of the centred ``F``):
    cosines under ``Sigma_f``, i.e. correlations across contexts of the log-odds columns.

    Parameters
    ----------
    model : NextTokenPredictor
    spec : {section: [(a, b, c, d), ...]} or [(a, b, c, d), ...]
        Token indices or labels; a plain list is the section ``"all"``.
    structure, tol, seed : accepted for the common signature (the verdict is always False:
        see :data:`ANALOGY_CONDITION`; nothing is random).
    pivot : pivot of ``G0`` in the identified form (default centred).
    center : bool
        Subtract the vocabulary mean from ``G`` in the raw form (default False: raw rows).
    chunk : int
        Vocabulary rows scored at a time (memory ``chunk x n_questions``).

    Returns
    -------
    PropertyResult
        ``raw``: accuracy per section and ``"overall"`` on ``G``; ``identified``: the same
        under ``Cov(f)``; ``details``: ``counts`` (evaluated questions per section),
        ``predictions`` and ``identified_predictions`` (predicted token per question).
    """
    if not isinstance(model, NextTokenPredictor):
        raise AllOrNoneTypeError(
            f"analogy_accuracy takes a NextTokenPredictor, got {type(model).__name__}; wrap "
            "the unembeddings with allornone.NextTokenPredictor(F, G) (F is needed for the "
            "identified form)"
        )
    G = _analogy_matrix(model.G, "model.G")
    F = _analogy_matrix(model.F, "model.F")
    sections = _analogy_sections(spec)
    if not sections or all(len(q) == 0 for q in sections.values()):
        raise AllOrNoneError("questions is empty: pass (a, b, c, d) 4-tuples")
    # Both forms stream the vocabulary in blocks of ``chunk`` tokens: no V x d array (raw
    # rows, their unit rows, or the identified rows in float64) is ever formed.
    mu = G.mean(axis=0) if center else None
    raw_rows = (lambda a, b: G[a:b] - mu) if mu is not None else (lambda a, b: G[a:b])
    acc, counts, preds, excluded = _three_cos_add(model, raw_rows, sections, chunk, "model.G")
    # The identified rows G0 R_F^T, each factor divided by its largest entry first: cosines
    # ignore a positive scale, and so no product overflows or underflows (any scale of F, G);
    # the rows are then divided by their largest entry over the whole vocabulary.
    sF = _max_abs(F)
    R_Fc = r_factor(F / sF, shift=F.mean(axis=0) / sF)
    X = R_Fc.T
    pX = model.pivot_vector(pivot) @ X

    def ident_rows(a: int, b: int) -> np.ndarray:  # rows a:b of G0 R_F^T, float64
        return G[a:b].astype(np.float64, copy=False) @ X - pX

    acc_id, _, preds_id, _ = _three_cos_add(
        model, ident_rows, sections, chunk, "the analogy vectors", scale=True
    )
    return PropertyResult.from_condition(
        SPEC.name,
        name,
        acc,
        acc_id,
        ANALOGY_CONDITION,
        1.0,
        default_tol(model, tol),
        excluded=excluded,
        details={
            "counts": counts,
            "predictions": preds,
            "identified_predictions": preds_id,
        },
    )


def _max_abs(X: np.ndarray) -> float:
    m = float(np.max(np.abs(X))) if X.size else 0.0
    return m if m > 0 else 1.0


def _analogy_matrix(X: Any, name: str) -> np.ndarray:
    """``X`` as a finite 2-D float array, or a clear error naming it (never a silent zero)."""
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise AllOrNoneTypeError(
            f"{name} must be a 2-D numpy array of floats, got {type(X).__name__}"
            + (f" of shape {X.shape}" if isinstance(X, np.ndarray) else "")
            + ": build the model with allornone.NextTokenPredictor(F, G)"
        )
    if X.dtype.kind != "f":
        raise AllOrNoneTypeError(
            f"{name} has dtype {X.dtype}; analogies need float vectors (token ids or labels "
            "passed as vectors?): convert with .astype(float)"
        )
    bad = [_bad_rows(X[a : a + 8192]) + a for a in range(0, X.shape[0], 8192)]
    _refuse_bad_rows(np.concatenate(bad) if bad else np.zeros(0, dtype=int), name)
    return X


def _bad_rows(X: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~np.isfinite(X).all(axis=1))


def _refuse_bad_rows(rows: np.ndarray, name: str) -> None:
    if rows.size:
        raise AllOrNoneError(
            f"{name} has {rows.size} row(s) with NaN or inf (first: row {int(rows[0])}); no "
            "cosine is defined there and a score would be wrong: fix or drop those rows"
        )


def _analogy_item(q: Any, sec: str) -> tuple[Any, Any, Any, Any]:
    if isinstance(q, (str, bytes)) or not hasattr(q, "__len__") or len(q) != 4:
        raise AllOrNoneError(
            f"analogy questions must be (a, b, c, d) 4-tuples, got {q!r} in section {sec!r}"
        )
    for t in q:
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (str, int, np.integer)):
            raise AllOrNoneTypeError(
                f"analogy question {tuple(q)!r} in section {sec!r} holds {t!r} "
                f"({type(t).__name__}); each word is a token index (int) or label (str)"
            )
    return (q[0], q[1], q[2], q[3])


def _analogy_sections(spec: Any) -> dict[str, list[tuple[Any, Any, Any, Any]]]:
    if isinstance(spec, np.ndarray):  # an (m, 4) array of token indices
        if spec.ndim != 2 or spec.shape[1] != 4 or spec.dtype.kind not in "iu":
            raise AllOrNoneTypeError(
                f"questions as an array must be integer token indices of shape (m, 4), got "
                f"dtype {spec.dtype} shape {spec.shape}"
            )
        spec = spec.tolist()
    sections = dict(spec) if isinstance(spec, Mapping) else {"all": list(spec)}
    return {
        str(sec): [
            _analogy_item(q, str(sec)) for q in (qs.tolist() if isinstance(qs, np.ndarray) else qs)
        ]
        for sec, qs in sections.items()
    }


def _unit_rows(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``mat`` scaled to unit length, and which rows are zero; scale-stable (each row
    is divided by its largest entry before its norm is taken, so nothing over/underflows)."""
    peak = np.max(np.abs(mat), axis=1)
    zero = peak == 0
    scaled = mat / np.where(zero, 1.0, peak)[:, None]
    norms = np.linalg.norm(scaled, axis=1)
    scaled /= np.where(zero, 1.0, norms)[:, None]  # in place: the unit rows
    return scaled, zero


#: Most scores (tokens x questions) one block of 3CosAdd holds: 2^22 (32 MB in float64).
SCORE_ENTRIES = 1 << 22


def _three_cos_add(
    model: NextTokenPredictor,
    rows: Callable[[int, int], np.ndarray],
    sections: dict,
    chunk: int,
    name: str,
    scale: bool = False,
) -> tuple[dict[str, float], dict[str, int], dict[str, np.ndarray], list[dict]]:
    """3CosAdd over the vectors ``rows(a, b)`` (tokens ``a:b``), streamed in blocks of
    ``chunk`` tokens: memory ``chunk x d`` (and the question words' rows), never ``V x d``.

    Pass 1 checks every row is finite, keeps the question words' rows and (``scale``) the
    largest entry over the vocabulary, by which every row is then divided; pass 2 scores
    each block against every section's targets (the same products, block for block, as on
    the whole matrix).
    """
    V = model.V
    resolved: dict[str, list[tuple[Any, list[int | None]]]] = {}
    need: set[int] = set()
    for sec, qs in sections.items():
        resolved[sec] = [(q, [resolve_one(model, t) for t in q]) for q in qs]
        for _, ii in resolved[sec]:
            if all(i is not None for i in ii):
                need.update(int(i) for i in ii[:3])  # type: ignore[arg-type]
    need_idx = np.array(sorted(need), dtype=int)
    kept: list[np.ndarray] = []
    bad: list[np.ndarray] = []
    peak = 0.0
    for start in range(0, V, chunk):
        B = rows(start, min(V, start + chunk))
        bad.append(_bad_rows(B) + start)
        if scale and B.size:
            peak = max(peak, float(np.max(np.abs(B))))
        sel = need_idx[(need_idx >= start) & (need_idx < start + chunk)]
        kept.append(B[sel - start].copy())
    _refuse_bad_rows(np.concatenate(bad) if bad else np.zeros(0, dtype=int), name)
    div = peak if peak > 0 else 1.0
    need_rows = np.concatenate(kept) if kept else np.zeros((0, model.d))
    if scale:
        need_rows = need_rows / div
    unit_need, zero_need = _unit_rows(need_rows)
    pos = {int(i): j for j, i in enumerate(need_idx)}

    accuracy: dict[str, float] = {}
    counts: dict[str, int] = {}
    preds: dict[str, np.ndarray] = {}
    excluded: list[dict] = []
    jobs: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for sec, qs in resolved.items():
        idx = []
        for q, ii in qs:
            if any(i is None for i in ii):
                excluded.append({"item": tuple(q), "section": sec, "reason": "token not found"})
            elif any(zero_need[pos[int(i)]] for i in ii[:3]):  # type: ignore[arg-type]
                excluded.append({"item": tuple(q), "section": sec, "reason": "zero vector"})
            else:
                idx.append(ii)
        if not idx:
            accuracy[sec], counts[sec], preds[sec] = float("nan"), 0, np.zeros(0, dtype=int)
            continue
        Q = np.array(idx, dtype=int)
        u = [unit_need[[pos[int(i)] for i in Q[:, j]]] for j in range(3)]
        target = u[1] - u[0] + u[2]
        jobs.append((sec, Q, target, np.full(len(Q), -np.inf), np.zeros(len(Q), dtype=int)))
    # questions scored in groups, so that a block of scores is at most chunk x group
    group = max(1, SCORE_ENTRIES // max(1, chunk))
    if jobs:
        for start in range(0, V, chunk):
            B = rows(start, min(V, start + chunk))
            unit, _ = _unit_rows(np.divide(B, div, out=B) if scale else B)  # B: our own
            for _, Q_all, target_all, best_all, arg_all in jobs:
                for g0 in range(0, len(Q_all), group):
                    Q, target = Q_all[g0 : g0 + group], target_all[g0 : g0 + group]
                    best, arg = best_all[g0 : g0 + group], arg_all[g0 : g0 + group]  # views
                    S = unit @ target.T  # (chunk, q)
                    cols = np.arange(len(Q))
                    for j in range(3):  # exclude the query words
                        inside = (Q[:, j] >= start) & (Q[:, j] < start + chunk)
                        S[Q[inside, j] - start, cols[inside]] = -np.inf
                    m = S.argmax(axis=0)
                    val = S[m, cols]
                    better = val > best
                    best[better], arg[better] = val[better], m[better] + start
    all_ok = 0
    all_n = 0
    for sec, Q, _, _, arg in jobs:
        ok = arg == Q[:, 3]
        accuracy[sec], counts[sec], preds[sec] = float(ok.mean()), len(Q), arg
        all_ok += int(ok.sum())
        all_n += len(Q)
    accuracy = {sec: accuracy[sec] for sec in resolved}  # the sections' order
    counts = {sec: counts[sec] for sec in resolved}
    preds = {sec: preds[sec] for sec in resolved}
    accuracy["overall"] = all_ok / all_n if all_n else float("nan")
    counts["overall"] = all_n
    return accuracy, counts, preds, excluded


SPEC = register_property(
    PropertySpec(
        name="analogy",
        title="Analogy accuracy (3CosAdd)",
        note="a : b :: c : d answered by the token closest in cosine to g(b) - g(a) + g(c). "
        "Euclidean cosines of g are not identified; the same test under the Cov(f) inner "
        "product is. Raw 3CosAdd is never all-or-none.",
        statistics=(
            Statistic(
                "*",
                "3CosAdd accuracy with Euclidean cosines of g(y), per section and overall",
                False,
                "raw",
            ),
            Statistic(
                "*",
                "3CosAdd accuracy with Cov(f) cosines of centred g0(y), per section and overall",
                True,
                "identified",
            ),
            Statistic(
                "overall",
                "3CosAdd accuracy with Cov(f) cosines of centred g0(y) "
                "(distribution only), all sections",
                True,
                "identified",
            ),
            Statistic("acc_raw", "3CosAdd accuracy with Euclidean cosines of g(y)", False, "raw"),
            Statistic(
                "acc_identified",
                "3CosAdd accuracy with Cov(f) cosines of centred g0(y) (distribution only)",
                True,
            ),
        ),
        headline="overall",
        function=analogy_accuracy,
        witness=None,
        protected_raw=(),
    )
)
