"""Extended linear equivalence with map recovery (THEORY.md section 4).

Two predictors on the same contexts and tokens give the same next-token distributions iff
their log-odds are equal iff (Theorem 5) they have the same effective complexity ``k`` and
an invertible ``A`` (k x k) with ``e~_f = A e_f`` and ``e~_g = A^{-T} e_g``.

:func:`equivalence` recovers ``A`` by least squares on the f side, checks it on both sides
(the residuals certify the equivalence on *all* contexts and tokens, because
``e~_f e~_g^T - e_f e_g^T`` is bounded by them) and measures the distance between the
distributions directly on a sample of contexts (all contexts when ``n <= max_rows``):
the largest log-odds gap and the mean KL divergence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import AllOrNoneError, default_equiv_tol
from .predictor import NextTokenPredictor, Pivot
from .structure import Structure, structure


@dataclass(eq=False)
class Equivalence:
    """Result of :func:`equivalence` (all distances relative unless named ``max_*``).

    Attributes
    ----------
    equivalent : bool
        Same ``k`` and both map residuals and the relative log-odds gap ``<= tol``.
    k_a, k_b : int
    max_logodds_gap : float
        ``max |L_a - L_b|`` over the evaluated contexts and all tokens (centred log-odds).
    rel_logodds_gap : float
        ``max_logodds_gap / max |L_a|`` on the same entries.
    mean_kl : float
        Mean over evaluated contexts of ``KL(p_a(.|x) || p_b(.|x))`` in nats.
    rows_evaluated : int
        How many contexts the two gaps above were computed on.
    A : ndarray (k_b, k_a)
        Least-squares map ``e_f^b ~= A e_f^a`` (square and invertible for equivalent
        models; rectangular, the best linear map, when the ks differ).
    B : ndarray (d_b, d_a)
        Ambient map ``U_b A U_a^T``: takes ``P_N f_a(x)`` to ``P_N f_b(x)``.
    residual_f, residual_g : float
        ``||e_f^a A^T - e_f^b|| / ||e_f^b||`` and ``||e_g^a A^{-1} - e_g^b|| / ||e_g^b||``
        (``A^+`` when rectangular).
    residual_f_reverse : float
        The f-side residual of the best map the other way, ``e_f^a ~= A' e_f^b``.
    cond_A : float
    tol : float
    reasons : list of str
        Why the pair is not equivalent (empty when it is).
    """

    equivalent: bool
    k_a: int
    k_b: int
    max_logodds_gap: float
    rel_logodds_gap: float
    mean_kl: float
    rows_evaluated: int
    A: np.ndarray = field(repr=False)
    B: np.ndarray = field(repr=False)
    residual_f: float
    residual_g: float
    residual_f_reverse: float
    cond_A: float
    tol: float
    reasons: list[str]
    structure_a: Structure = field(repr=False)
    structure_b: Structure = field(repr=False)

    def map_f(self, v: np.ndarray) -> np.ndarray:
        """Carry f-side vectors (rows of shape (..., d_a)) of model a into model b: ``B v``."""
        return np.asarray(v) @ self.B.T

    def map_g(self, v: np.ndarray) -> np.ndarray:
        """Carry g-side vectors (unembedding differences) of a into b: ``U_b A^{-T} U_a^T v``."""
        Ua, Ub = self.structure_a.E, self.structure_b.E
        return ((np.asarray(v) @ Ua) @ np.linalg.pinv(self.A)) @ Ub.T

    def summary(self) -> dict:
        return {
            "equivalent": self.equivalent,
            "k_a": self.k_a,
            "k_b": self.k_b,
            "max_logodds_gap": self.max_logodds_gap,
            "rel_logodds_gap": self.rel_logodds_gap,
            "mean_kl": self.mean_kl,
            "rows_evaluated": self.rows_evaluated,
            "residual_f": self.residual_f,
            "residual_g": self.residual_g,
            "residual_f_reverse": self.residual_f_reverse,
            "cond_A": self.cond_A,
            "tol": self.tol,
            "reasons": list(self.reasons),
        }


def equivalence(
    a: NextTokenPredictor,
    b: NextTokenPredictor,
    *,
    tol: float | None = None,
    rank_tol: float | None = None,
    pivot: Pivot = "center",
    max_rows: int | None = 256,
    seed: int = 0,
    structures: tuple[Structure, Structure] | None = None,
) -> Equivalence:
    """Are ``a`` and ``b`` distribution-equivalent? Recover the map and the distances.

    Parameters
    ----------
    a, b : NextTokenPredictor
        Same contexts (n) and tokens (V, same order); widths may differ.
    tol : float, optional
        Relative tolerance of the verdict (default ``sqrt(eps)`` of the coarser input dtype:
        1.5e-8 for float64, 3.5e-4 for float32).
    rank_tol : float, optional
        Passed to :func:`structure` for both models.
    max_rows : int or None
        Contexts on which the log-odds gap and KL are computed exactly (a seeded random
        sample when ``n`` is larger; ``None`` = all). Cost ``O(rows * V * (d_a + d_b))``.
    structures : (Structure, Structure), optional
        Reuse precomputed structures (must match ``pivot``).
    """
    _check_pair(a, b)
    eps = max(a.eps, b.eps)
    tol = float(tol) if tol is not None else default_equiv_tol(eps)
    if structures is None:
        sa = structure(a, tol=rank_tol, pivot=pivot)
        sb = structure(b, tol=rank_tol, pivot=pivot)
    else:
        sa, sb = structures
    reasons: list[str] = []
    rows = _rows(a.n, max_rows, seed)
    gap, rel_gap, kl = _distances(a, b, rows, pivot)
    if rel_gap > tol:
        reasons.append(f"log-odds differ: max gap {gap:.3g} ({rel_gap:.3g} relative > {tol:.3g})")

    if sa.k != sb.k:
        reasons.append(f"effective complexities differ: k={sa.k} vs k={sb.k}")
    # Best linear map e_f^b ~= e_f^a A^T (A is k_b x k_a; square when the ks agree). With
    # L_b = L_a it satisfies e_g^a = e_g^b A, hence e_g^b = e_g^a A^{-1} (A^+ when rectangular).
    ef_a, ef_b = sa.e_f, sb.e_f
    At = _lstsq(ef_a, ef_b)
    A = At.T
    cond = float(np.linalg.cond(A))
    res_f = _rel(ef_a @ At - ef_b, ef_b)
    Bt = _lstsq(ef_b, ef_a)
    res_f_rev = _rel(ef_b @ Bt - ef_a, ef_a)
    square = sa.k == sb.k and np.isfinite(cond) and cond < 1 / eps
    if sa.k == sb.k and not square:
        reasons.append(f"recovered A is singular (cond {cond:.3g})")
    # e_g^a A^{-1} = G0_a (U_a A^{-1}): one V x d x k product, e_g^a itself is not needed
    W = sa.E @ (np.linalg.inv(A) if square else np.linalg.pinv(A))
    res_g = _rel(a.G @ W - a.pivot_vector(pivot) @ W - sb.e_g, sb.e_g)
    B = sb.E @ A @ sa.E.T
    if res_f > tol:
        reasons.append(f"f-side map residual {res_f:.3g} > {tol:.3g}")
    if res_g > tol:
        reasons.append(f"g-side map residual {res_g:.3g} > {tol:.3g}")
    return Equivalence(
        equivalent=not reasons,
        k_a=sa.k,
        k_b=sb.k,
        max_logodds_gap=gap,
        rel_logodds_gap=rel_gap,
        mean_kl=kl,
        rows_evaluated=len(rows),
        A=A,
        B=B,
        residual_f=res_f,
        residual_g=res_g,
        residual_f_reverse=res_f_rev,
        cond_A=cond,
        tol=tol,
        reasons=reasons,
        structure_a=sa,
        structure_b=sb,
    )


def _check_pair(a: NextTokenPredictor, b: NextTokenPredictor) -> None:
    for name, m in (("a", a), ("b", b)):
        if not isinstance(m, NextTokenPredictor):
            raise AllOrNoneError(f"{name} must be a NextTokenPredictor, got {type(m).__name__}")
    if a.n != b.n:
        raise AllOrNoneError(
            f"a has {a.n} contexts but b has {b.n}: compare models on the same contexts"
        )
    if a.V != b.V:
        raise AllOrNoneError(
            f"a has V={a.V} tokens but b has V={b.V}: restrict both to shared tokens first "
            "(for example with .subset(cols=...))"
        )
    for what, la, lb in (("token", a.tokens, b.tokens), ("context", a.contexts, b.contexts)):
        if la is not None and lb is not None and la != lb:
            i = next(i for i, (x, y) in enumerate(zip(la, lb)) if x != y)
            raise AllOrNoneError(
                f"{what} labels differ at position {i} ({la[i]!r} vs {lb[i]!r}): align the two "
                f"models' {what}s in the same order"
            )


def _rows(n: int, max_rows: int | None, seed: int) -> np.ndarray:
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def _distances(a, b, rows: np.ndarray, pivot: Pivot, chunk: int = 256):
    from scipy.special import log_softmax

    gap, scale, kls = 0.0, 0.0, []
    for start in range(0, len(rows), chunk):
        r = rows[start : start + chunk]
        la = a.log_odds(r, pivot=pivot, allow_large=True)
        lb = b.log_odds(r, pivot=pivot, allow_large=True)
        gap = max(gap, float(np.abs(la - lb).max()))
        scale = max(scale, float(np.abs(la).max()))
        pa, pb = log_softmax(la, axis=1), log_softmax(lb, axis=1)
        kls.append((np.exp(pa) * (pa - pb)).sum(axis=1))
    kl = float(np.mean(np.concatenate(kls))) if kls else 0.0
    return gap, gap / scale if scale > 0 else gap, max(kl, 0.0)


def _lstsq(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares ``X W ~= Y`` by pivoted QR (LAPACK gelsy: rank-revealing, faster than SVD)."""
    import scipy.linalg as sla

    return sla.lstsq(X, Y, lapack_driver="gelsy", check_finite=False)[0]


def _rel(diff: np.ndarray, ref: np.ndarray) -> float:
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(diff) / den) if den > 0 else float(np.linalg.norm(diff))
