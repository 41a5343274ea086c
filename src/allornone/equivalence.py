"""Extended linear equivalence with map recovery (THEORY.md section 4).

Two predictors on the same contexts and tokens give the same next-token distributions iff
their log-odds are equal iff (Theorem 5) they have the same effective complexity ``k`` and
an invertible ``A`` (k x k) with ``e~_f = A e_f`` and ``e~_g = A^{-T} e_g``.

:func:`equivalence` recovers ``A`` by least squares on the f side, checks it on both sides
(the residuals certify the equivalence on *all* contexts and tokens, because
``e~_f e~_g^T - e_f e_g^T`` is bounded by them) and measures the distance between the
distributions directly on a sample of contexts (all contexts when ``n <= max_rows``):
the largest log-odds gap and the mean KL divergence.

Cost (no n x V matrix; ``O((n + V) d^2)`` like :func:`structure`): the two structures (run
side by side, see ``_parallel``); ``A`` from the normal equations on k x k Gram matrices for
float32/bfloat16 sources (QR on the n x k effective contexts for float64 sources or when the
Grams are ill-conditioned); the f-side residuals directly on the contexts; then one streamed
pass over the vocabulary that forms ``e_g^a A^{-1} - e_g^b`` on every token and the log-odds
of the sampled contexts in both models. When both models hold float32-exact values that pass
runs in float32 (products good to ~1e-6 relative, far below the float32 tolerance 3.5e-4);
otherwise in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ._parallel import cpu_count, run_parallel
from ._tables import TableMixin
from ._validation import AllOrNoneError, default_equiv_tol
from .linalg import gram_matrix
from .predictor import NextTokenPredictor, Pivot, as_predictor
from .structure import GRAM_EPS, Structure, structure

#: Contexts on which reports (``compare``, ``study``) measure log-odds gaps and KL; the
#: function's own default (64) keeps a single call fast.
REPORT_ROWS = 256


@dataclass(eq=False)
class Equivalence(TableMixin):
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
        (``A^+`` when rectangular), over all contexts and all tokens. For float32/bfloat16
        sources they are resolved down to about 1e-7 (f side, from float64 Gram matrices;
        smaller values, including 0, mean equal up to rounding) and 1e-6 (g side, float32
        products), far below the float32 tolerance 3.5e-4; float64 sources are exact.
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
    residual_f: float
    residual_g: float
    residual_f_reverse: float
    cond_A: float
    tol: float
    reasons: list[str]
    structure_a: Structure = field(repr=False)
    structure_b: Structure = field(repr=False)
    _B: np.ndarray | None = field(default=None, repr=False)

    @property
    def B(self) -> np.ndarray:
        """Ambient map ``U_b A U_a^T`` (d_b x d_a), computed on first use."""
        if self._B is None:
            self._B = self.structure_b.E @ self.A @ self.structure_a.E.T
        return self._B

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
    a: NextTokenPredictor | Any,
    b: NextTokenPredictor | Any,
    *,
    tol: float | None = None,
    rank_tol: float | None = None,
    pivot: Pivot = "center",
    max_rows: int | None = 64,
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
        The default 64 keeps one call fast; reports use ``REPORT_ROWS`` (256). The verdict
        does not depend on it: the map residuals cover every context and token.
    structures : (Structure, Structure), optional
        Reuse precomputed structures (must match ``pivot``).
    """
    a, b = as_predictor(a, "a"), as_predictor(b, "b")
    _check_pair(a, b)
    eps = max(a.eps, b.eps)
    tol = float(tol) if tol is not None else default_equiv_tol(eps)
    coarse = eps > GRAM_EPS
    cross_f = partial(gram_matrix, a.F, Y=b.F)  # F_a^T F_b, O(n d_a d_b): coarse route only
    if structures is None:  # the two structures side by side (see _parallel)
        tasks = [partial(structure, m, tol=rank_tol, pivot=pivot) for m in (a, b)]
        out: list[Any] = run_parallel(tasks + ([cross_f] if coarse else []))
        sa, sb = out[0], out[1]
        C_ab = out[2] if coarse else None
    else:
        sa, sb = structures
        if sa.pivot != pivot or sb.pivot != pivot:
            raise AllOrNoneError(
                f"structures were computed with pivots {sa.pivot!r} and {sb.pivot!r} but "
                f"pivot={pivot!r}: pass matching structures or the same pivot"
            )
        C_ab = cross_f() if coarse else None
    reasons: list[str] = []
    if sa.k != sb.k:
        reasons.append(f"effective complexities differ: k={sa.k} vs k={sb.k}")

    Ea, Eb = sa.E, sb.E
    # float32 arithmetic for the big products only when both models hold float32-exact
    # values (float32/bf16 sources): good to ~1e-6 relative, far below their tolerance
    dtype = np.float32 if min(a.eps, b.eps) > GRAM_EPS else np.float64
    # Best linear map e_f^b ~= e_f^a A^T (A is k_b x k_a; square when the ks agree). With
    # L_b = L_a it satisfies e_g^a = e_g^b A, hence e_g^b = e_g^a A^{-1} (A^+ when rectangular).
    At = Bt = None
    if coarse:
        # normal equations on the k x k Grams of the effective contexts, e_f^T e_f =
        # (R_F E)^T (R_F E); the cross term costs O(n d_a d_b)
        Xa, Xb = sa.R_F @ Ea, sb.R_F @ Eb
        S_aa, S_ab, S_bb = Xa.T @ Xa, Ea.T @ C_ab @ Eb, Xb.T @ Xb
        At = _solve_normal(S_aa, S_ab, tol)
        Bt = _solve_normal(S_bb, S_ab.T, tol)
    if At is not None and Bt is not None:
        # residuals from the same float64 Grams: ||X W - Y||^2 = tr(W'SxxW) - 2tr(W'Sxy) +
        # tr(Syy) resolves relative residuals down to ~1e-7, below the rounding of
        # float32/bf16 data (a value at that floor, or 0, means "equal to rounding")
        res_f = _residual_from_grams(At, S_aa, S_ab, S_bb)
        res_f_rev = _residual_from_grams(Bt, S_bb, S_ab.T, S_aa)
    else:  # float64 sources, or e_f too ill-conditioned: QR, residuals on the contexts
        ef_a, ef_b = sa.e_f, sb.e_f
        At, Bt = _lstsq(ef_a, ef_b), _lstsq(ef_b, ef_a)
        res_f, res_f_rev = _map_residuals(a.F, Ea, b.F, Eb, At, Bt, dtype)
    A = At.T
    cond = _cond(A, squared_ok=coarse)
    square = sa.k == sb.k and np.isfinite(cond) and cond < 1 / eps
    if sa.k == sb.k and not square:
        reasons.append(f"recovered A is singular (cond {cond:.3g})")
    W = np.linalg.inv(A) if square else np.linalg.pinv(A)  # e_g^b ~= e_g^a W

    # One pass over the vocabulary: the g-side residual and the distances on the sampled rows.
    # ||e_g^a W - e_g^b|| is computed either in E coordinates, ||G0_a (Ea W) - G0_b Eb||
    # (cost V k (d_a + d_b)), or in the ambient space of b, ||G0_a (Ea W Eb^T) - G0_b Eb Eb^T||
    # with Eb Eb^T = I - C C^T for the complement C of E_b (cost V d_b (d_a + 2 (d_b - k_b)));
    # the cheaper one is used (the ambient one when k_b = d_b: then C is empty).
    if sb.k * (a.d + b.d) < b.d * (a.d + 2 * (b.d - sb.k)):
        maps = (Ea @ W, Eb, False)
    else:
        maps = (Ea @ W @ Eb.T, _complement(sb), True)
    rows = _rows(a.n, max_rows, seed)
    res_g2, gap, scale, kl = _vocabulary_pass(a, b, rows, pivot, maps, dtype)
    res_g = _ratio(res_g2, float(np.sum((sb.R_G @ Eb) ** 2)))  # ||e_g^b||^2 = ||R_G Eb||^2
    rel_gap = gap / scale if scale > 0 else gap
    if rel_gap > tol:
        reasons.insert(
            0, f"log-odds differ: max gap {gap:.3g} ({rel_gap:.3g} relative > {tol:.3g})"
        )
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
        residual_f=res_f,
        residual_g=res_g,
        residual_f_reverse=res_f_rev,
        cond_A=cond,
        tol=tol,
        reasons=reasons,
        structure_a=sa,
        structure_b=sb,
    )


def _complement(st: Structure) -> np.ndarray:
    """Orthonormal basis (d x (d - k)) of the complement of E in R^d: J_g, then the directions
    outside N (the trailing right singular vectors of G0)."""
    outside = st._g_right[st.dim_N :].T
    if st.dim_N + outside.shape[1] < st.d:  # fewer tokens than dimensions: complete by QR
        return np.linalg.qr(st.E, mode="complete")[0][:, st.k :]
    return np.hstack([st.J_g, outside])


def _solve_normal(S_xx, S_xy, tol: float) -> np.ndarray | None:
    """Least squares ``X W ~= Y`` from ``S_xx = X^T X`` and ``S_xy = X^T Y`` (Cholesky).

    The normal equations square the condition number of ``X``: their relative error is about
    ``cond(S_xx) * 1e-16``. Returns None (use the QR route) when LAPACK's condition estimate
    says that could reach 1% of ``tol``, or ``S_xx`` is not positive definite.
    """
    import scipy.linalg as sla
    from scipy.linalg.lapack import dpocon

    if S_xx.shape[0] == 0:
        return None
    try:
        c = sla.cho_factor(S_xx, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    rcond, info = dpocon(c[0], np.abs(S_xx).sum(axis=0).max(), uplo="L" if c[1] else "U")
    if info != 0 or rcond <= 0 or np.finfo(float).eps / rcond > 1e-2 * tol:
        return None
    return sla.cho_solve(c, S_xy, check_finite=False)


def _check_pair(a: NextTokenPredictor, b: NextTokenPredictor) -> None:
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


def _cond(A: np.ndarray, squared_ok: bool) -> float:
    """2-norm condition number of ``A``. ``squared_ok``: from the eigenvalues of ``A A^T``
    (3x faster than the SVD; exact to ~1e-16 cond^2 relative, ample below the 1 / eps(float32)
    = 8e6 that decides singularity for coarse sources)."""
    if A.size == 0:
        return float("inf")
    if squared_ok:
        lam = np.linalg.eigvalsh(A @ A.T if A.shape[0] <= A.shape[1] else A.T @ A)
        return float(np.sqrt(lam[-1] / lam[0])) if lam[0] > 0 else float("inf")
    sv = np.linalg.svd(A, compute_uv=False)
    return float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")


def _residual_from_grams(W, S_xx, S_xy, S_yy) -> float:
    """``||X W - Y||_F / ||Y||_F`` from ``X^T X``, ``X^T Y`` and ``Y^T Y``."""
    num = float(np.sum((S_xx @ W) * W)) - 2 * float(np.sum(S_xy * W)) + float(np.trace(S_yy))
    return _ratio(max(num, 0.0), float(np.trace(S_yy)))


def _map_residuals(Fa, Ea, Fb, Eb, At, Bt, dtype, block: int = 8192) -> tuple[float, float]:
    """``||e_a At - e_b|| / ||e_b||`` and ``||e_b Bt - e_a|| / ||e_a||`` with ``e = F E``,
    streamed over blocks of contexts, products in ``dtype``."""
    Ea, Eb, At, Bt = (x.astype(dtype) for x in (Ea, Eb, At, Bt))
    num_ab = num_ba = ref_a = ref_b = 0.0
    for start in range(0, Fa.shape[0], block):
        ea = Fa[start : start + block].astype(dtype) @ Ea
        eb = Fb[start : start + block].astype(dtype) @ Eb
        ref_a += _sq(ea)
        ref_b += _sq(eb)
        num_ab += _sq(ea @ At - eb)
        num_ba += _sq(eb @ Bt - ea)
    return _ratio(num_ab, ref_b), _ratio(num_ba, ref_a)


def _sq(x: np.ndarray) -> float:
    """``||x||_F^2`` (column sums in the array's dtype, the total in float64)."""
    return float(np.einsum("ij,ij->j", x, x).sum(dtype=np.float64))


def _ratio(num2: float, den2: float) -> float:
    return float(np.sqrt(num2 / den2)) if den2 > 0 else float(np.sqrt(num2))


def _vocabulary_pass(a, b, rows, pivot: Pivot, maps, dtype, block: int = 4096):
    """Stream the vocabulary once: g-side residual and log-odds distances on ``rows``.

    Per block of tokens ``y``, in ``dtype`` (float32 when both models hold float32-exact
    values: products good to ~1e-6 relative, far below their tolerance; float64 otherwise):

    - ``D = (G_a[y] - p_a) Ma - (G_b[y] - p_b) Mb`` (``ambient``: ``Mb`` is the complement
      ``C`` of E_b and the second term is ``(G_b[y] - p_b) (I - C C^T)``), summing ``||D||^2``;
    - ``la = F_a[rows] (G_a[y] - p_a)^T`` and ``lb`` alike: running ``max |la - lb|`` and
      ``max |la|``, and online sums for ``KL(p_a || p_b) = E_pa[diff] + log E_pa[exp(-diff)]``
      with ``diff = la - lb`` (the normalisers cancel), accumulated as
      ``t = sum exp(la - m) diff``, ``u = sum exp(la - m) expm1(-diff)``, ``z = sum exp(la - m)``:
      ``KL = t/z + log1p(u/z)``, whose first-order terms cancel exactly, so near-equal models
      get their true (tiny) KL rather than rounding noise.

    Returns ``(||D||^2, max gap, max |la|, mean KL)``. Memory: a few ``block x d`` and
    ``len(rows) x block`` buffers.
    """
    Ma, Mb, ambient = maps
    pa, pb = a.pivot_vector(pivot).astype(dtype), b.pivot_vector(pivot).astype(dtype)
    r = len(rows)
    # one product per model and block: G0_a[y] [Ma | F_a[rows]^T], G0_b[y] [Mb | F_b[rows]^T]
    Pa = np.ascontiguousarray(np.hstack([Ma, a.F[rows].T]), dtype=dtype)
    Pb = np.ascontiguousarray(np.hstack([Mb, b.F[rows].T]), dtype=dtype)
    CT = np.ascontiguousarray(Mb.T, dtype=dtype) if ambient else None  # C^T, ambient form only
    widths = (Ma.shape[1], Mb.shape[1])
    block = max(256, min(block, (1 << 22) // max(r, 1)))
    # contiguous token ranges in parallel (see _parallel); partial results merge exactly
    parts = min(cpu_count(), max(1, a.V // (4 * block)))
    cuts = np.linspace(0, a.V, parts + 1).astype(int)
    states = run_parallel(
        [
            partial(
                _vocab_range, a, b, lo, hi, (pa, pb), (Pa, Pb, CT), widths, ambient, block, dtype
            )
            for lo, hi in zip(cuts[:-1], cuts[1:])
        ]
    )
    res2 = sum(x[0] for x in states)
    gap = max(x[1] for x in states)
    scale = max(x[2] for x in states)
    if r == 0:
        return res2, 0.0, 0.0, 0.0
    m = np.max([x[3] for x in states], axis=0)
    z, t, u = (sum(x[i] * np.exp(x[3] - m) for x in states) for i in (4, 5, 6))
    mb = np.max([x[7] for x in states], axis=0)
    zb = sum(x[8] * np.exp(x[7] - mb) for x in states)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        kl = t / z + np.log1p(u / z)
        # where exp(-diff) overflowed (gaps beyond ~700 nats, e.g. logits scaled by 1e30),
        # log E_pa[exp(-diff)] = logsumexp(lb) - logsumexp(la) from the separate running sums
        bad = ~np.isfinite(kl)
        if bad.any():
            kl[bad] = (t / z + (mb + np.log(zb)) - (m + np.log(z)))[bad]
    return res2, gap, scale, max(float(np.mean(kl)), 0.0)


def _vocab_range(a, b, lo, hi, shifts, products, widths, ambient, block, dtype):
    """The pass of :func:`_vocabulary_pass` over tokens ``lo:hi``. Returns the partial state
    ``(||D||^2, max gap, max |la|, m, z, t, u, mb, zb)`` with sums relative to the running max
    ``m`` (and ``zb = sum exp(lb - mb)``, the normaliser of ``b``, for the overflow fallback)."""
    pa, pb = shifts
    Pa, Pb, CT = products
    wa, wb = widths
    r = Pa.shape[1] - wa
    res2, gap, scale = 0.0, 0.0, 0.0
    m, mb = np.full(r, -np.inf), np.full(r, -np.inf)
    z, t, u, zb = np.zeros(r), np.zeros(r), np.zeros(r), np.zeros(r)
    # buffers reused across blocks (no per-block allocation of large arrays)
    widths_ = (a.d, b.d, Pa.shape[1], Pb.shape[1], b.d, r)
    bufs = [np.empty((block, w), dtype=dtype) for w in widths_]
    for start in range(lo, hi, block):
        c = min(block, hi - start)
        ga, gb, Xa, Xb, tmp, eb = (x[:c] for x in bufs)
        np.copyto(ga, a.G[start : start + c], casting="same_kind")
        ga -= pa
        np.copyto(gb, b.G[start : start + c], casting="same_kind")
        gb -= pb
        np.matmul(ga, Pa, out=Xa)
        np.matmul(gb, Pb, out=Xb)
        D = Xa[:, :wa]
        if not ambient:  # G0_a Ea W - G0_b Eb
            D -= Xb[:, :wb]
        else:  # G0_a Ea W Eb^T - G0_b (I - C C^T)
            D -= gb
            if wb:
                D += np.matmul(Xb[:, :wb], CT, out=tmp)
        res2 += _sq(D)
        if r == 0:
            continue
        # log-odds of the sampled rows for these tokens, tokens along axis 0: (block, r)
        la, diff = Xa[:, wa:], Xb[:, wb:]
        colmax_b = diff.max(axis=0)  # lb, before it is overwritten by la - lb
        new_b = np.maximum(mb, colmax_b)
        zb = zb * np.exp(mb - new_b) + np.exp(
            np.subtract(diff, new_b.astype(dtype), out=eb), out=eb
        ).sum(axis=0, dtype=np.float64)
        mb = new_b
        np.subtract(la, diff, out=diff)
        lo_d, hi_d = float(diff.min()), float(diff.max())
        gap = max(gap, hi_d, -lo_d)
        colmax = la.max(axis=0)
        scale = max(scale, float(colmax.max()), -float(la.min()))
        new = np.maximum(m, colmax)
        factor = np.exp(m - new)
        z, t, u, m = z * factor, t * factor, u * factor, new
        e = np.exp(np.subtract(la, new.astype(dtype), out=la), out=la)
        z += e.sum(axis=0, dtype=np.float64)
        t += np.einsum("ij,ij->j", e, diff, dtype=np.float64)
        # expm1(-diff) overflows float32 beyond 88 nats: do such blocks in float64
        x = np.negative(diff, out=diff) if lo_d > -80 else -diff.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # inf: handled by the fallback
            u += np.einsum("ij,ij->j", e, np.expm1(x, out=x), dtype=np.float64)
    return res2, gap, scale, m, z, t, u, mb, zb


def _lstsq(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares ``X W ~= Y`` by pivoted QR (LAPACK gelsy: rank-revealing, faster than SVD)."""
    import scipy.linalg as sla

    if X.size == 0 or Y.size == 0:
        return np.zeros((X.shape[1], Y.shape[1]))
    sx, sy = float(np.max(np.abs(X))), float(np.max(np.abs(Y)))
    if sx == 0 or sy == 0 or not np.isfinite(sx * sy):
        sx = sy = 1.0
    # scaled to unit size first: LAPACK's workspace query and pivoting fail near the limits
    # of float64 (factors of 1e-200 or 1e200), and the solution scales back exactly
    W = sla.lstsq(X / sx, Y / sy, lapack_driver="gelsy", check_finite=False)[0]
    return W * (sy / sx)
