"""Next-token predictors ``p(y | x) = softmax_y(f(x)^T g(y))`` on finite sets (THEORY.md 1-2).

A :class:`NextTokenPredictor` holds the factors ``F`` (n x d, one row per context) and
``G`` (V x d, one row per token). Everything the distribution determines is computed from
these factors; the n x V matrix of logits / log-odds is only ever formed for small
selections of rows and columns (or in streamed chunks, for reductions over the vocabulary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._validation import AllOrNoneError, AllOrNoneTypeError, as_matrix, to_numpy

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

    Attributes
    ----------
    F : ndarray (n, d), float64
    G : ndarray (V, d), float64 (bias absorbed)
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
    ) -> None:
        F_, eps_f = as_matrix(F, "F")
        G_, eps_g = as_matrix(G, "G")
        if F_.shape[1] != G_.shape[1]:
            raise AllOrNoneError(
                f"F has d={F_.shape[1]} columns but G has d={G_.shape[1]}: f(x) and g(y) must "
                "live in the same space (did you pass the LM head transposed?)"
            )
        if G_.shape[0] < 2:
            raise AllOrNoneError("G must have at least 2 tokens (rows) for a distribution")
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
            F_ = np.hstack([F_, np.ones((F_.shape[0], 1))])
            G_ = np.hstack([G_, b[:, None]])
        self.F: np.ndarray = np.ascontiguousarray(F_)
        self.G: np.ndarray = np.ascontiguousarray(G_)
        self.eps: float = eps
        self.contexts = _labels(contexts, self.F.shape[0], "contexts", "F")
        self.tokens = _labels(tokens, self.G.shape[0], "tokens", "G")
        self.source = "factors"
        self._g_mean: np.ndarray | None = None
        self._tok_index: dict[str, int] | None = None
        self._ctx_index: dict[str, int] | None = None

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
            self._g_mean = self.G.mean(axis=0)
        return self._g_mean

    def G0(self, pivot: Pivot = "center") -> np.ndarray:
        """Pivoted or centred unembeddings, shape (V, d) (THEORY.md 2).

        ``pivot="center"`` (default) gives ``g(y) - mean_y g``; an int or token label gives
        ``g(y) - g(y0)``. Both span the same subspace ``N``.
        """
        return self.G - self.pivot_vector(pivot)

    def pivot_vector(self, pivot: Pivot = "center") -> np.ndarray:
        """The vector subtracted from every ``g(y)``: the mean, or ``g(y0)``; shape (d,)."""
        if isinstance(pivot, str) and pivot == "center":
            return self.g_mean
        return self.G[self.token_index(pivot)]

    def _G_cols(self, cols: Index, c: np.ndarray) -> np.ndarray:
        """``G[c]`` without copying the whole vocabulary when every column is selected."""
        return self.G if cols is None else self.G[c]

    # ------------------------------------------------------------------ distribution
    def logits(self, rows: Index = None, cols: Index = None, *, allow_large: bool = False):
        """Logits ``f(x)^T g(y)`` for a selection, shape (len(rows), len(cols))."""
        r, c = self.row_indices(rows), self.col_indices(cols)
        _guard(len(r), len(c), allow_large)
        return self.F[r] @ self._G_cols(cols, c).T

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
        Fr = self.F[r]
        # F (G - p)^T = F G^T - (F p) 1^T: no V x d temporary
        return Fr @ self._G_cols(cols, c).T - (Fr @ self.pivot_vector(pivot))[:, None]

    def log_normalizer(self, rows: Index = None, *, chunk: int = 8192) -> np.ndarray:
        """``log sum_y exp(f(x)^T g(y))`` per selected row, streamed over the vocabulary."""
        r = self.row_indices(rows)
        Fr = self.F[r]
        m = np.full(len(r), -np.inf)
        acc = np.zeros(len(r))
        for start in range(0, self.V, chunk):
            block = Fr @ self.G[start : start + chunk].T
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
        return self.F[r] @ self._G_cols(cols, c).T - self.log_normalizer(r)[:, None]

    def probs(self, rows: Index = None, cols: Index = None, *, allow_large: bool = False):
        """Probabilities ``p(y|x)`` for a selection of rows and columns."""
        return np.exp(self.log_probs(rows, cols, allow_large=allow_large))

    # ------------------------------------------------------------------ restriction
    def subset(self, rows: Index = None, cols: Index = None) -> NextTokenPredictor:
        """The predictor restricted to some contexts and/or tokens.

        Restricting tokens renormalises the softmax over the kept tokens (the distribution
        conditioned on ``y`` in the subset), which is what a restricted token set means.
        """
        r, c = self.row_indices(rows), self.col_indices(cols)
        if len(r) == 0 or len(c) < 2:
            raise AllOrNoneError(
                f"subset needs at least 1 context and 2 tokens, got {len(r)} and {len(c)}"
            )
        out = NextTokenPredictor.__new__(NextTokenPredictor)
        out.F = np.ascontiguousarray(self.F[r])
        out.G = np.ascontiguousarray(self.G[c])
        out.eps = self.eps
        out.has_bias = self.has_bias
        out.contexts = [self.contexts[i] for i in r] if self.contexts is not None else None
        out.tokens = [self.tokens[i] for i in c] if self.tokens is not None else None
        out.source = self.source
        out._g_mean = None
        out._tok_index = None
        out._ctx_index = None
        return out


# ---------------------------------------------------------------------- helpers
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
