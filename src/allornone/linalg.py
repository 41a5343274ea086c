"""Small numerical helpers: streamed R factors, orthonormal bases, projectors.

Everything here works on factors (tall-skinny matrices) and never forms an n x V product.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import scipy.linalg as sla

#: Rows per block in the streamed (TSQR) factorisation; 4096 x d blocks are where LAPACK's
#: blocked QR runs near BLAS-3 speed on a 2-core machine.
QR_BLOCK_ROWS = 4096


#: Rows from which :func:`memoized_r_factors` caches a factor (smaller ones are cheap).
MEMO_MIN_ROWS = 4096
_MEMO: dict[tuple, np.ndarray] | None = None


@contextmanager
def memoized_r_factors() -> Iterator[dict]:
    """Within this block, :func:`r_factor` of identical inputs is computed once.

    Inputs are keyed by content (shape, dtype and a hash of the bytes of ``X`` and ``shift``),
    so copies of one unembedding matrix (``subset``, restricted token sets) share one
    factorisation; results are exact (the same computation, reused). Used by the audit, where
    many property calls factor the same V x d matrix.
    """
    global _MEMO
    previous, _MEMO = _MEMO, {}
    try:
        yield _MEMO
    finally:
        _MEMO = previous


def _digest(X: np.ndarray, shift: np.ndarray | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(X).view(np.uint8).data)
    if shift is not None:
        h.update(np.ascontiguousarray(shift, dtype=np.float64).view(np.uint8).data)
    return h.hexdigest()


def _memoized(X: np.ndarray, shift: np.ndarray | None, tag: tuple, compute: Callable):
    """``compute()``, cached by the content of ``X`` and ``shift`` inside
    :func:`memoized_r_factors` (returned arrays are copies, callers may modify them)."""
    if _MEMO is None or X.shape[0] < MEMO_MIN_ROWS or not isinstance(X, np.ndarray):
        return compute()
    key = (X.shape, str(X.dtype), shift is None, _digest(X, shift), *tag)
    if key not in _MEMO:
        _MEMO[key] = compute()
    out = _MEMO[key]
    return tuple(a.copy() for a in out) if isinstance(out, tuple) else out.copy()


def r_factor(
    X: np.ndarray,
    *,
    shift: np.ndarray | None = None,
    block: int = QR_BLOCK_ROWS,
    gram: bool = False,
) -> np.ndarray:
    """A factor ``R`` (r x d) with ``R^T R = (X - shift)^T (X - shift)``.

    ``X - shift`` is never materialised: rows are streamed in blocks, cost ``O(m d^2)``.

    - ``gram=False``: tall-skinny QR (TSQR); accurate to float64 rounding without squaring
      the condition number. Used for float64 inputs.
    - ``gram=True``: ``R = diag(s) Vt`` from the eigen-decomposition of the streamed Gram
      matrix (see :func:`factor_svd`). Several times faster (BLAS-3 ``syrk`` only); it resolves
      singular values down to about ``1e-8 * s_max``, far below the rounding floor of float32
      or bfloat16 data, so it is used for inputs that came in those precisions.

    Memoised inside :func:`memoized_r_factors`.
    """
    if gram:
        s, Vt = factor_svd(X, shift=shift, block=block, gram=True)
        return s[:, None] * Vt
    return _memoized(
        X, shift, ("qr", block), lambda: _tsqr(lambda: _blocks(X, shift, block), X.shape[1])
    )


def factor_svd(
    X: np.ndarray,
    *,
    shift: np.ndarray | None = None,
    block: int = QR_BLOCK_ROWS,
    gram: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Singular values ``s`` (r,) and right singular vectors ``Vt`` (r x d) of ``X - shift``.

    ``R = diag(s) Vt`` is an R factor of ``X - shift`` (``R^T R`` is its Gram matrix), with
    orthonormal rows, so pseudo-inverses and row-space bases need no further decomposition.
    ``gram=True`` reads them off the eigen-decomposition of the streamed float64 Gram matrix
    (one pass, ``syrk``); ``gram=False`` takes the SVD of the TSQR factor (float64 accurate).
    Memoised inside :func:`memoized_r_factors`.
    """
    if gram:

        def compute():
            lam, W = np.linalg.eigh(gram_matrix(X, shift=shift, block=block))
            return np.sqrt(np.clip(lam[::-1], 0.0, None)), np.ascontiguousarray(W[:, ::-1].T)

        return _memoized(X, shift, ("gram-svd", block), compute)
    _, s, Vt = np.linalg.svd(r_factor(X, shift=shift, block=block), full_matrices=False)
    return s, Vt


def gram_matrix(
    X: np.ndarray,
    *,
    shift: np.ndarray | None = None,
    Y: np.ndarray | None = None,
    shift_y: np.ndarray | None = None,
    block: int = QR_BLOCK_ROWS,
) -> np.ndarray:
    """``(X - shift)^T (X - shift)``, or the cross Gram ``(X - shift)^T (Y - shift_y)``.

    Accumulated in float64 over row blocks (``X`` (m x d), ``Y`` (m x e)); the shifted
    matrices are never materialised. Cost ``O(m d e)``.
    """
    if Y is not None and Y.shape[0] != X.shape[0]:
        raise ValueError(f"cross Gram needs the same rows, got {X.shape} and {Y.shape}")
    C = np.zeros((X.shape[1], X.shape[1] if Y is None else Y.shape[1]))
    part = np.empty_like(C)  # buffers reused across blocks: no per-block allocations
    if Y is None:
        for b in _blocks(X, shift, block):
            C += np.matmul(b.T, b, out=part)
        return C
    for bx, by in zip(_blocks(X, shift, block), _blocks(Y, shift_y, block)):
        C += np.matmul(bx.T, by, out=part)
    return C


def _blocks(X: np.ndarray, shift: np.ndarray | None, block: int) -> Iterator[np.ndarray]:
    """Row blocks of ``X - shift`` in float64 (views of a float64 ``X`` when ``shift`` is
    None; otherwise cast and shifted into one reused buffer, valid until the next block), so
    float32 factors are reduced in float64 without a full float64 copy."""
    if shift is None and X.dtype == np.float64:
        for start in range(0, X.shape[0], block):
            yield X[start : start + block]
        return
    buf = np.empty((min(block, X.shape[0]), X.shape[1]))
    sh = None if shift is None else np.asarray(shift, dtype=np.float64)
    for start in range(0, X.shape[0], block):
        b = X[start : start + block]
        out = buf[: b.shape[0]]
        np.copyto(out, b, casting="same_kind")
        if sh is not None:
            out -= sh
        yield out


#: TSQR keeps at most this many block R factors before merging them into one (memory
#: ``TSQR_MERGE x d x d`` however many rows are streamed).
TSQR_MERGE = 16


def _tsqr(make_blocks: Callable[[], Iterator[np.ndarray]], d: int) -> np.ndarray:
    Rs: list[np.ndarray] = []
    for b in make_blocks():
        Rs.append(_r_of(b, d))
        if len(Rs) >= TSQR_MERGE:  # merge: R of the stacked Rs (a tree reduction)
            Rs = [_r_of(np.vstack(Rs), d)]
    stacked = np.vstack(Rs)
    if len(Rs) == 1:
        return stacked
    return _r_of(stacked, d)


def _r_of(b: np.ndarray, d: int) -> np.ndarray:
    """The leading ``min(m, d)`` rows of the R factor of ``b`` (m x d), as an array of its
    own: scipy's ``mode="r"`` returns R as m x d, and a slice of it would keep the whole
    block alive (for TSQR over V rows: every block, a V x d float64 copy in all)."""
    return sla.qr(b, mode="r", check_finite=False)[0][: min(b.shape[0], d)].copy()


def row_basis(R: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis (d x r) of the row space of ``R`` and the singular values of ``R``.

    Singular values ``<= rtol * s_max`` are treated as zero.
    """
    _, s, Vt = np.linalg.svd(R, full_matrices=False)
    r = _rank(s, rtol)
    return Vt[:r].T.copy(), s


def _rank(s: np.ndarray, rtol: float) -> int:
    if s.size == 0 or s[0] <= 0:
        return 0
    return int((s > rtol * s[0]).sum())


def orth(X: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis of the column space of ``X`` (d x m) -> (d x r)."""
    if X.size == 0:
        return np.zeros((X.shape[0], 0))
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    return U[:, : _rank(s, rtol)].copy()


def principal_cosines(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between spans of orthonormal ``A`` and ``B``."""
    if A.shape[1] == 0 or B.shape[1] == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(A.T @ B, compute_uv=False), 0.0, 1.0)


#: Squares of numbers inside this range neither overflow nor underflow in float64; outside
#: it, :func:`norm2` and :func:`energy_rank` divide by the largest value first.
_SAFE_SQUARE = (1e-150, 1e150)


def norm2(s: np.ndarray) -> float:
    """Euclidean norm of the vector ``s``, without overflow or underflow at any scale (the
    plain ``sqrt(sum(s**2))`` inside :data:`_SAFE_SQUARE`, bit for bit)."""
    top = float(np.max(np.abs(s))) if s.size else 0.0
    if top == 0 or not np.isfinite(top):
        return top
    if _SAFE_SQUARE[0] < top < _SAFE_SQUARE[1]:
        return float(np.sqrt(np.sum(s**2)))
    return top * float(np.sqrt(np.sum((s / top) ** 2)))


def energy_rank(s: np.ndarray, energy: float) -> int:
    """Smallest ``r`` with ``sum_{i<=r} s_i^2 >= energy * sum s_i^2`` (any scale of ``s``)."""
    if s.size == 0 or s[0] <= 0:
        return 0
    if not _SAFE_SQUARE[0] < s[0] < _SAFE_SQUARE[1]:
        s = s / s[0]
    c = np.cumsum(s**2)
    return int(np.searchsorted(c, energy * c[-1] * (1 - 1e-15)) + 1)


def random_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def random_invertible(d: int, cond: float, rng: np.random.Generator) -> np.ndarray:
    """A random d x d matrix with condition number exactly ``cond`` (log-spaced spectrum)."""
    if d == 0:
        return np.zeros((0, 0))
    s = np.logspace(0, np.log10(cond), d) if d > 1 else np.ones(1)
    return (random_orthogonal(d, rng) * s) @ random_orthogonal(d, rng)
