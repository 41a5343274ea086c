"""Next-token predictors ``p(y | x) = softmax_y(f(x)^T g(y))`` on finite sets (THEORY.md 1-2).

A :class:`NextTokenPredictor` holds the factors ``F`` (n x d, one row per context) and
``G`` (V x d, one row per token). Everything the distribution determines is computed from
these factors; the n x V matrix of logits / log-odds is only ever formed for small
selections of rows and columns (or in streamed chunks, for reductions over the vocabulary).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._validation import (
    AllOrNoneError,
    AllOrNoneTypeError,
    as_matrix,
    check_has_data,
    to_numpy,
)

#: Largest number of entries a dense log-odds / logits block may have unless the caller
#: passes ``allow_large=True`` (5e7 float64 entries = 400 MB).
MAX_DENSE_ENTRIES = 50_000_000

Index = None | int | slice | Sequence[int] | Sequence[str] | np.ndarray
Pivot = str | int


class NextTokenPredictor:
    """A log-bilinear next-token predictor on ``n`` contexts and ``V`` tokens.

    Parameters
    ----------
    F : array-like, shape (n, d)
        Context representations ``f(x)`` (for a transformer: final hidden state after the
        final norm). numpy arrays or torch tensors (CPU or CUDA), any floating dtype.
    G : array-like, shape (V, d)
        Unembeddings ``g(y)`` (LM-head rows).
    bias : array-like, shape (V,), optional
        Per-token logit bias ``b_y``. It is absorbed exactly (THEORY.md 1):
        ``F <- [F, 1]``, ``G <- [G, b]``, so ``d`` grows by one.
    contexts : sequence of str, optional
        Labels of the rows (context strings).
    tokens : sequence of str, optional
        Labels of the columns (token strings).
    eps : float, optional
        Precision the factors were computed in, when coarser than their dtype (for example
        float64 rows extracted from a float32 model: ``eps=np.finfo(np.float32).eps``);
        default tolerances scale with it. Default: the machine epsilon of the inputs.

    Attributes
    ----------
    F : ndarray (n, d)
    G : ndarray (V, d) (bias absorbed)
        Each stored as float32 when it came in float32 or coarser (float32, bfloat16,
        float16: exact in float32), else float64; ``F`` is float64 whenever ``G`` is (a
        float64 ``F`` beside a float32 ``G`` is kept as it is: the audit extracts ``F`` in
        float64). A float32 numpy array (or CPU tensor) is used in place, not copied: a
        262,144 x 640 unembedding stays 0.67 GB, never 1.3 GB. Every product the library
        forms from them is computed in float64 (row blocks of ``G`` cast on the fly, see
        :meth:`G_matmul`), so results do not depend on the storage dtype.
    dtype : numpy dtype
        The storage dtype of ``G`` (``F.dtype`` is the same or float64).
    n, V, d : int
    eps : float
        Machine epsilon of the dtype the inputs came in; default tolerances scale with it.
    source : str
        ``"factors"`` or ``"logits"`` (built by :meth:`from_logits`).
    """

    def __init__(
        self,
        F: Any,
        G: Any,
        *,
        bias: Any = None,
        contexts: Sequence[str] | None = None,
        tokens: Sequence[str] | None = None,
        eps: float | None = None,
    ) -> None:
        F_, eps_f = _as_factor(F, "F")
        G_, eps_g = _as_factor(G, "G")
        if F_.shape[1] != G_.shape[1]:
            raise AllOrNoneError(
                f"F has d={F_.shape[1]} columns but G has d={G_.shape[1]}: f(x) and g(y) must "
                "live in the same space (did you pass the LM head transposed?)"
            )
        if G_.shape[0] < 2:
            raise AllOrNoneError("G must have at least 2 tokens (rows) for a distribution")
        floor = eps
        eps = max(eps_f, eps_g)
        self.has_bias = bias is not None
        if bias is not None:
            b, eps_b = to_numpy(bias, "bias")
            b = b.reshape(-1)
            if b.shape[0] != G_.shape[0]:
                raise AllOrNoneError(
                    f"bias has {b.shape[0]} entries but G has V={G_.shape[0]} rows"
                )
            eps = max(eps, eps_b)
            if eps_b < _F32_EPS:  # a float64 bias: store everything in float64
                F_, G_ = F_.astype(np.float64, copy=False), G_.astype(np.float64, copy=False)
            b = b.astype(G_.dtype)
            F_ = np.hstack([F_, np.ones((F_.shape[0], 1), dtype=F_.dtype)])
            G_ = np.hstack([G_, b[:, None]])
        if F_.dtype != G_.dtype and G_.dtype == np.float64:  # float64 G: F float64 too
            F_ = F_.astype(np.float64)
        # float64 F beside float32 G: both kept (F is n x d; a float64 copy of G would be the
        # largest array of the run). Every product with G streams it in float64 row blocks.
        self.F: np.ndarray = np.ascontiguousarray(F_)
        self.G: np.ndarray = np.ascontiguousarray(G_)
        if floor is not None:
            if not (isinstance(floor, (int, float)) and np.isfinite(floor) and 0 <= floor < 1):
                raise AllOrNoneError(f"eps must be a float in [0, 1), got {floor!r}")
            eps = max(eps, float(floor))
        self.eps: float = eps
        self.contexts = _labels(contexts, self.F.shape[0], "contexts", "F")
        self.tokens = _labels(tokens, self.G.shape[0], "tokens", "G")
        self.source = "factors"
        self._g_mean: np.ndarray | None = None
        self._tok_index: dict[str, int] | None = None
        self._ctx_index: dict[str, int] | None = None
        self._g_digest: str | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_logits(
        cls,
        logits: Any,
        *,
        contexts: Sequence[str] | None = None,
        tokens: Sequence[str] | None = None,
        tol: float | None = None,
    ) -> NextTokenPredictor:
        """A predictor from a distribution given as logits, shape (n, V).

        The distribution has no factorisation of its own; an exact one is built from the
        thin SVD of the centred log-odds ``L_c = U S W^T``: ``F = U S``, ``G = W`` with
        ``d = rank(L_c)`` (singular values below ``tol * s_max`` dropped; default
        ``max(n, V) * eps``). Any per-row constant (a log-normaliser) is irrelevant, so
        log-probabilities are accepted too (see :meth:`from_log_probs`).
        """
        Lg, eps = as_matrix(logits, "logits")
        Lc = Lg - Lg.mean(axis=1, keepdims=True)
        U, s, Wt = np.linalg.svd(Lc, full_matrices=False)
        tol = tol if tol is not None else max(Lc.shape) * eps
        r = int((s > tol * (s[0] if s.size and s[0] > 0 else 1.0)).sum()) if s.size else 0
        r = max(r, 1)  # a uniform distribution is still a distribution: keep one zero column
        obj = cls(U[:, :r] * s[:r], Wt[:r].T, contexts=contexts, tokens=tokens)
        obj.eps = eps
        obj.source = "logits"
        return obj

    @classmethod
    def from_log_probs(
        cls,
        log_probs: Any,
        *,
        contexts: Sequence[str] | None = None,
        tokens: Sequence[str] | None = None,
        tol: float | None = None,
        check: bool = True,
    ) -> NextTokenPredictor:
        """Like :meth:`from_logits` for normalised log-probabilities, shape (n, V).

        With ``check=True`` each row must satisfy ``logsumexp(row) = 0`` to within
        ``sqrt(eps) * V``; otherwise the input is not a distribution and an error says so.
        """
        lp, eps = as_matrix(log_probs, "log_probs")
        if check:
            from scipy.special import logsumexp

            z = logsumexp(lp, axis=1)
            worst = float(np.abs(z).max())
            if worst > np.sqrt(eps) * lp.shape[1]:
                i = int(np.abs(z).argmax())
                raise AllOrNoneError(
                    f"log_probs row {i} sums to exp({z[i]:.3g}) != 1: these are not normalised "
                    "log-probabilities (pass logits to from_logits instead)"
                )
        return cls.from_logits(lp, contexts=contexts, tokens=tokens, tol=tol)

    # ------------------------------------------------------------------ basic facts
    @property
    def n(self) -> int:
        return int(self.F.shape[0])

    @property
    def V(self) -> int:
        return int(self.G.shape[0])

    @property
    def d(self) -> int:
        return int(self.F.shape[1])

    @property
    def dtype(self) -> np.dtype:
        """Storage dtype of ``G`` (float32 or float64; ``F`` has it or float64)."""
        return self.G.dtype

    # ------------------------------------------------------------------ identity of G
    def same_G(self, other: NextTokenPredictor) -> bool:
        """Whether ``other`` has the same unembeddings ``G`` (bit for bit), without copies.

        Cheap first: the same array (or the same memory, as ``subset`` shares it), then shape
        and dtype, then a hash of a strided sample of rows; only when all of these agree is
        the full content hashed (once per predictor, cached). ``G`` is treated as read-only.
        """
        if not isinstance(other, NextTokenPredictor):
            return False
        A, B = self.G, other.G
        if A is B or (
            A.shape == B.shape
            and A.dtype == B.dtype
            and A.strides == B.strides
            and A.__array_interface__["data"][0] == B.__array_interface__["data"][0]
        ):
            return True
        if A.shape != B.shape or A.dtype != B.dtype:
            return False
        step = max(1, A.shape[0] // 64)
        if _hash(A[::step]) != _hash(B[::step]):
            return False
        return self.G_digest() == other.G_digest()

    def G_digest(self) -> str:
        """Hex blake2b digest of the bytes, shape and dtype of ``G`` (computed once)."""
        if self._g_digest is None:
            self._g_digest = _hash(self.G)
        return self._g_digest

    def __repr__(self) -> str:
        bias = ", bias absorbed" if self.has_bias else ""
        return (
            f"NextTokenPredictor(n={self.n}, V={self.V}, d={self.d}{bias}, source={self.source!r})"
        )

    # ------------------------------------------------------------------ indexing helpers
    def token_index(self, token: str | int) -> int:
        """Column index of a token given by label or index."""
        return int(self.col_indices(np.array([token]) if isinstance(token, str) else [token])[0])

    def row_indices(self, rows: Index) -> np.ndarray:
        """Resolve ``rows`` (None, int, slice, mask, indices or context labels) to indices."""
        if self._ctx_index is None and self.contexts is not None:
            self._ctx_index = {c: i for i, c in enumerate(self.contexts)}
        return _resolve(rows, self.n, self._ctx_index, "rows", "context")

    def col_indices(self, cols: Index) -> np.ndarray:
        """Resolve ``cols`` (None, int, slice, mask, indices or token labels) to indices."""
        if self._tok_index is None and self.tokens is not None:
            self._tok_index = {t: i for i, t in enumerate(self.tokens)}
        return _resolve(cols, self.V, self._tok_index, "cols", "token")

    # ------------------------------------------------------------------ unembeddings
    @property
    def g_mean(self) -> np.ndarray:
        """Mean unembedding over the vocabulary, shape (d,)."""
        if self._g_mean is None:
            self._g_mean = _column_mean(self.G)
        return self._g_mean

    def G0(self, pivot: Pivot = "center", rows: Index = None) -> np.ndarray:
        """Pivoted or centred unembeddings, shape (V, d) (THEORY.md 2), float64.

        ``pivot="center"`` (default) gives ``g(y) - mean_y g``; an int or token label gives
        ``g(y) - g(y0)``. Both span the same subspace ``N``. ``rows`` selects tokens first
        (``G0(pivot, rows=Y)`` costs ``len(Y) x d``, ``G0(pivot)[Y]`` costs ``V x d``); for
        products with the whole vocabulary use :meth:`G0_matmul` (no V x d copy).
        """
        G = self.G if rows is None else self.G[self.col_indices(rows)]
        return G - self.pivot_vector(pivot)

    def pivot_vector(self, pivot: Pivot = "center") -> np.ndarray:
        """The vector subtracted from every ``g(y)``: the mean, or ``g(y0)``; shape (d,)."""
        if isinstance(pivot, str) and pivot == "center":
            return self.g_mean
        return self.G[self.token_index(pivot)].astype(np.float64)

    def G0_matmul(self, X: Any, pivot: Pivot = "center", *, block: int = 8192) -> np.ndarray:
        """``G0 @ X`` (V x m, float64) for ``X`` (d x m), streamed over row blocks of ``G``:
        memory ``block x d`` beyond the result, never a V x d copy."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:  # a vector: G0 @ x, shape (V,)
            return self.G0_matmul(X[:, None], pivot, block=block)[:, 0]
        return _rows_matmul(self.G, X, block) - self.pivot_vector(pivot) @ X

    def G_matmul(self, X: Any, *, block: int = 8192) -> np.ndarray:
        """``G @ X`` (V x m, float64) for ``X`` (d x m), streamed over row blocks of ``G``
        (cast to float64 one block at a time: never a V x d float64 copy). ``G_matmul(X.T).T``
        gives the logits ``X^T G^T`` of any rows ``X^T``, e.g. shifted representations."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:  # a vector: G @ x, shape (V,)
            return self.G_matmul(X[:, None], block=block)[:, 0]
        return _rows_matmul(self.G, X, block)

    def F_matmul(self, X: Any, *, block: int = 8192) -> np.ndarray:
        """``F @ X`` (n x m, float64), streamed over row blocks of ``F``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            return self.F_matmul(X[:, None], block=block)[:, 0]
        return _rows_matmul(self.F, X, block)

    def _times_G(self, Fr: np.ndarray, cols: Index, c: np.ndarray) -> np.ndarray:
        """``Fr @ G[c]^T`` in float64, without copying the whole vocabulary (nor casting it
        to float64) when every column is selected."""
        G = self.G if cols is None else self.G[c]
        Fr = Fr.astype(np.float64, copy=False)
        if G.dtype == np.float64:
            return Fr @ G.T
        out = np.empty((Fr.shape[0], G.shape[0]))
        step = max(256, (1 << 19) // max(1, G.shape[1]))  # 4 MB float64 blocks
        buf = np.empty((min(step, G.shape[0]), G.shape[1]))
        for start in range(0, G.shape[0], step):
            blk = buf[: min(step, G.shape[0] - start)]
            np.copyto(blk, G[start : start + step], casting="same_kind")
            out[:, start : start + blk.shape[0]] = Fr @ blk.T
        return out

    # ------------------------------------------------------------------ distribution
    def logits(self, rows: Index = None, cols: Index = None, *, allow_large: bool = False):
        """Logits ``f(x)^T g(y)`` for a selection, shape (len(rows), len(cols))."""
        r, c = self.row_indices(rows), self.col_indices(cols)
        _guard(len(r), len(c), allow_large)
        return self._times_G(self.F[r], cols, c)

    def log_odds(
        self,
        rows: Index = None,
        cols: Index = None,
        *,
        pivot: Pivot = "center",
        allow_large: bool = False,
    ) -> np.ndarray:
        """Log-odds ``L[x, y] = f(x)^T g0(y)`` for a selection (THEORY.md 2).

        Centred (default): ``log p(y|x) - mean_y' log p(y'|x)`` over the *whole* vocabulary;
        pivoted: ``log p(y|x) - log p(y0|x)``.
        """
        r, c = self.row_indices(rows), self.col_indices(cols)
        _guard(len(r), len(c), allow_large)
        Fr = self.F[r].astype(np.float64)
        # F (G - p)^T = F G^T - (F p) 1^T: no V x d temporary
        out = self._times_G(Fr, cols, c)
        out -= (Fr @ self.pivot_vector(pivot))[:, None]
        return out

    def log_normalizer(self, rows: Index = None, *, chunk: int = 8192) -> np.ndarray:
        """``log sum_y exp(f(x)^T g(y))`` per selected row, streamed over the vocabulary."""
        r = self.row_indices(rows)
        Fr = self.F[r].astype(np.float64)
        m = np.full(len(r), -np.inf)
        acc = np.zeros(len(r))
        for start in range(0, self.V, chunk):
            block = Fr @ self.G[start : start + chunk].astype(np.float64).T
            bm = block.max(axis=1)
            new_m = np.maximum(m, bm)
            acc = acc * np.exp(m - new_m) + np.exp(block - new_m[:, None]).sum(axis=1)
            m = new_m
        return m + np.log(acc)

    def log_probs(
        self, rows: Index = None, cols: Index = None, *, allow_large: bool = False
    ) -> np.ndarray:
        """Normalised log-probabilities ``log p(y|x)`` for a selection of rows and columns."""
        r, c = self.row_indices(rows), self.col_indices(cols)
        _guard(len(r), len(c), allow_large)
        out = self._times_G(self.F[r], cols, c)
        out -= self.log_normalizer(r)[:, None]
        return out

    def probs(self, rows: Index = None, cols: Index = None, *, allow_large: bool = False):
        """Probabilities ``p(y|x)`` for a selection of rows and columns."""
        return np.exp(self.log_probs(rows, cols, allow_large=allow_large))

    # ------------------------------------------------------------------ restriction
    def subset(self, rows: Index = None, cols: Index = None) -> NextTokenPredictor:
        """The predictor restricted to some contexts and/or tokens.

        Restricting tokens renormalises the softmax over the kept tokens (the distribution
        conditioned on ``y`` in the subset), which is what a restricted token set means.

        Nothing is copied that is not selected: with ``cols=None`` the result shares ``G``
        (the same array, and its cached mean and digest); with ``rows=None`` it shares ``F``.
        """
        r, c = self.row_indices(rows), self.col_indices(cols)
        if len(r) == 0 or len(c) < 2:
            raise AllOrNoneError(
                f"subset needs at least 1 context and 2 tokens, got {len(r)} and {len(c)}"
            )
        out = NextTokenPredictor.__new__(NextTokenPredictor)
        out.F = self.F if rows is None else np.ascontiguousarray(self.F[r])
        out.G = self.G if cols is None else np.ascontiguousarray(self.G[c])
        out.eps = self.eps
        out.has_bias = self.has_bias
        out.contexts = [self.contexts[i] for i in r] if self.contexts is not None else None
        out.tokens = (
            self.tokens
            if cols is None
            else [self.tokens[i] for i in c]
            if self.tokens is not None
            else None
        )
        out.source = self.source
        out._g_mean = self._g_mean if cols is None else None
        out._tok_index = self._tok_index if cols is None else None
        out._ctx_index = None
        out._g_digest = self._g_digest if cols is None else None
        return out


# ---------------------------------------------------------------------- helpers
#: Inputs whose source epsilon is at least this (float32, bfloat16, float16) are exact in
#: float32 and are stored as float32.
_F32_EPS = float(np.finfo(np.float32).eps)


def _as_factor(x: Any, name: str) -> tuple[np.ndarray, float]:
    """``x`` as a 2-D numpy factor and the epsilon of its source dtype.

    float32/bfloat16/float16 inputs (numpy or torch) become float32 (float32 numpy arrays and
    CPU tensors without a copy); everything else goes through :func:`as_matrix` (float64).
    Finiteness is checked in row blocks (no V x d temporary).
    """
    torch = sys.modules.get("torch")
    arr: np.ndarray | None = None
    if torch is not None and isinstance(x, torch.Tensor):
        check_has_data(x, name)
        if x.dtype in (torch.float32, torch.bfloat16, torch.float16):
            eps = float(torch.finfo(x.dtype).eps)
            arr = x.detach().to("cpu", dtype=torch.float32).numpy()
    elif isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float16):
        eps = float(np.finfo(x.dtype).eps)
        arr = x.astype(np.float32, copy=False)
    if arr is None:
        return as_matrix(x, name)
    if arr.ndim != 2:
        raise AllOrNoneError(f"{name} must be 2-D, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise AllOrNoneError(f"{name} is empty (shape {arr.shape})")
    for start in range(0, arr.shape[0], 8192):
        part = arr[start : start + 8192]
        if not np.isfinite(part).all():
            bad = np.argwhere(~np.isfinite(arr))
            first = tuple(int(i) for i in bad[0])
            raise AllOrNoneError(
                f"{name} has {len(bad)} non-finite values (NaN or inf), first at index "
                f"{first}; check the model weights / extraction (a bfloat16 overflow is a "
                "common cause)"
            )
    return arr, eps


def _column_mean(X: np.ndarray, block: int = 8192) -> np.ndarray:
    """Column means of ``X`` accumulated in float64 over row blocks, shape (d,)."""
    acc = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], block):
        acc += X[start : start + block].sum(axis=0, dtype=np.float64)
    return acc / X.shape[0]


def _rows_matmul(A: np.ndarray, X: np.ndarray, block: int) -> np.ndarray:
    """``A @ X`` in float64 (``X`` float64), casting row blocks of ``A`` on the fly (``A``
    may be any row-sliceable matrix, e.g. rows streamed from a store)."""
    if isinstance(A, np.ndarray) and A.dtype == np.float64:
        return A @ X
    out = np.empty((A.shape[0], X.shape[1]))
    for start in range(0, A.shape[0], block):
        np.matmul(A[start : start + block].astype(np.float64), X, out=out[start : start + block])
    return out


def _hash(X: np.ndarray) -> str:
    """blake2b of the shape, dtype and bytes of ``X`` (row blocks; no full copy)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((X.shape, str(X.dtype))).encode())
    rows = max(1, (1 << 24) // max(1, X.itemsize * (X.shape[1] if X.ndim > 1 else 1)))
    for start in range(0, X.shape[0], rows):
        h.update(np.ascontiguousarray(X[start : start + rows]).view(np.uint8).data)
    return h.hexdigest()


def _labels(labels: Sequence[str] | None, size: int, name: str, of: str) -> list[str] | None:
    if labels is None:
        return None
    out = [str(x) for x in labels]
    if len(out) != size:
        raise AllOrNoneError(f"{name} has {len(out)} labels but {of} has {size} rows")
    return out


def _resolve(idx: Index, size: int, lookup: dict[str, int] | None, name: str, what: str):
    if idx is None:
        return np.arange(size)
    if isinstance(idx, slice):
        return np.arange(size)[idx]
    if isinstance(idx, (int, np.integer)):
        idx = [int(idx)]
    if isinstance(idx, str):
        idx = [idx]
    arr = np.asarray(idx)
    if arr.dtype == bool:
        if arr.shape != (size,):
            raise AllOrNoneError(f"boolean mask {name} has shape {arr.shape}, expected ({size},)")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=int)
    if arr.dtype.kind in "US" or arr.dtype == object:
        if lookup is None:
            raise AllOrNoneError(
                f"{name} were given as labels but this predictor has no {what} labels; "
                f"pass integer indices or build it with {what}s=[...]"
            )
        missing = [str(x) for x in arr.reshape(-1) if str(x) not in lookup]
        if missing:
            raise AllOrNoneError(
                f"unknown {what} label(s) in {name}: {missing[:5]!r}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        return np.array([lookup[str(x)] for x in arr.reshape(-1)], dtype=int)
    if arr.dtype.kind not in "iu":
        raise AllOrNoneError(f"{name} must be indices, a mask or labels, got dtype {arr.dtype}")
    arr = arr.reshape(-1).astype(int)
    if arr.min() < -size or arr.max() >= size:
        raise AllOrNoneError(f"{name} index out of range for {size} {what}s")
    return arr % size


def _guard(nr: int, nc: int, allow_large: bool) -> None:
    if nr * nc > MAX_DENSE_ENTRIES and not allow_large:
        raise AllOrNoneError(
            f"refusing to materialise a {nr} x {nc} block ({nr * nc:,} entries): select fewer "
            "rows/columns, or pass allow_large=True if you really want it"
        )


def as_predictor(model: Any, name: str = "model") -> NextTokenPredictor:
    """``model`` as a :class:`NextTokenPredictor`: a predictor itself, or the ``.model`` of an
    :class:`~allornone.EquivalentSample` (or of any object carrying a predictor as ``.model``,
    such as a sampled member). Anything else raises a :class:`TypeError` that names the fix.
    """
    if isinstance(model, NextTokenPredictor):
        return model
    inner = getattr(model, "model", None)
    if isinstance(inner, NextTokenPredictor):
        return inner
    hint = (
        "a real model: build its predictor first, e.g. allornone.models.load(name)"
        ".predictor(contexts)"
        if hasattr(model, "predictor")
        else "wrap your matrices with allornone.NextTokenPredictor(F, G)"
    )
    raise AllOrNoneTypeError(
        f"{name} must be a NextTokenPredictor (or an EquivalentSample), got "
        f"{type(model).__name__}: {hint}"
    )
