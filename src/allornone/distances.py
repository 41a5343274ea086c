"""Distances between two close models: ``d_LLV`` and ``d_{f,g}`` (THEORY.md 10).

After Nielsen, Marconato, Dittadi and Gresele, *When Does Closeness in Distribution Imply
Representational Similarity? An Identifiability Perspective* (NeurIPS 2025, arXiv 2506.03784).
A small KL divergence between two models does not make their representations similar; the
paper defines a distance between distributions, the log-likelihood variance distance
``d_LLV``, and a dissimilarity between representations, ``d_{f,g}``, with a bound linking the
two. Both are computed here for two :class:`~allornone.NextTokenPredictor` on the same
contexts and tokens, streamed over blocks of the vocabulary (the ``n x V`` matrix is never
formed). Every product is computed in float64 (row blocks of a float32 ``G`` are cast one at a
time), so the results do not depend on the storage dtype: a model stored in float32 and its
float64 copy are at distance 0.

Definitions (``lp(y|x) = log p(y|x)``; variances over contexts are over the ``n`` given
contexts, variances over tokens over the whole vocabulary, both with weight ``1/count``):

- pivots: a token ``y0`` and a context ``x0``;
- per token ``y``: ``sigma_y = sd_x(lp(y|x) - lp(y0|x))`` in each model, and the terms
  ``sd_x(lp_a(y|x)/sigma^a_y - lp_b(y|x)/sigma^b_y)`` and the same with ``y0`` in place of
  ``y`` in the numerators (the pivot term), and ``|sigma^a_y - sigma^b_y|``;
- per context ``x``: ``tau_x = sd_y(lp(y|x) - lp(y|x0))`` and the mirror-image terms, with
  variances over the tokens;
- ``d_LLV = max(max token terms, max context terms, lam max |sigma^a - sigma^b|,
  lam max |tau^a - tau^b|)`` with ``lam = 1e-5`` by default (the paper's choice).

``d_{f,g}`` (the paper's PLS-SVD dissimilarity): for a *label diversity set* (``y0`` and ``m``
other tokens) the representations are read through the unembedding differences,
``(g(y_j) - g(y0))^T f(x)`` (the log-odds of ``y_j`` against ``y0``); each coordinate is centred
and scaled to unit variance over the contexts, and ``m_SVD`` is the mean singular value of the
cross-covariance of the two models' standardised coordinates (the mean covariance of the
PLS-SVD component pairs). ``d_f = 1 - m_SVD``. The unembedding side ``d_g`` is the mirror
image with an *input diversity set* (``x0`` and ``m`` other contexts), read through
``(f(x_i) - f(x0))^T g(y)`` over the vocabulary. ``d_{f,g} = max(d_f, d_g)``, each the maximum
over ``draws`` random diversity sets (seeded) with the pivots of ``d_LLV``.

Every quantity above is a function of the two distributions alone, so it is the same for
every pair of equivalent models (identified), whatever their widths: equivalent models give 0.

The bound. With the pivots shared, each standardised coordinate differs between the models by
at most the token (or context) term of ``y_j`` plus its pivot term, so by ``2 d_LLV`` in
standard deviation; the trace of the cross-covariance is then at least
``m (1 - 2 d_LLV^2)`` and the nuclear norm is at least the trace:

    d_{f,g} <= 2 d_LLV^2                       (reported as ``bound``)

which implies the paper's form ``d_{f,g} <= 2 M d_LLV`` (``M`` the size of the diversity set,
reported as ``paper_bound``) whenever ``d_LLV <= M``, and ``d_{f,g} <= 1`` always. The paper
takes the label term over all labels and the input term over one sampled diversity set; this
module takes both over every token and every context, which can only make ``d_LLV`` larger, so
the bound holds for every diversity set with these pivots.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._tables import TableMixin, _frame, plain
from ._validation import AllOrNoneError
from .equivalence import _check_pair
from .predictor import NextTokenPredictor, as_predictor

#: The paper's weight of the standard-deviation terms of d_LLV.
DEFAULT_LAMBDA = 1e-5
#: Random diversity sets per side for d_{f,g}.
DEFAULT_DRAWS = 8
#: A log-odds standard deviation below this fraction of the largest one counts as zero.
SD_FLOOR = 1e-9

__all__ = ["DEFAULT_LAMBDA", "Distances", "distances", "representation_dissimilarity"]


@dataclass(frozen=True, eq=False)
class Distances(TableMixin):
    """``d_LLV`` and ``d_{f,g}`` between two predictors (THEORY.md 10).

    Attributes
    ----------
    d_llv : float
        The log-likelihood variance distance (0 for equivalent models).
    token_term, context_term : float
        The largest token-side and context-side terms (pivot terms included).
    token_sd_term, context_sd_term : float
        The largest ``|sigma^a - sigma^b|`` and ``|tau^a - tau^b|`` (before ``lam``).
    lam : float
        Weight of the standard-deviation terms in ``d_llv``.
    d_fg, d_f, d_g : float
        The PLS-SVD dissimilarity (max of the f and g sides), each side the worst of
        ``draws`` diversity sets of ``dim`` tokens / contexts. In ``[0, 1]``.
    bound, paper_bound : float
        ``2 d_llv^2`` and ``2 dim d_llv``: upper bounds of ``d_fg`` (module docstring).
    mean_kl : float
        Mean over the contexts of ``KL(p_a || p_b)`` in nats, for comparison.
    pivot_token, pivot_context : int
        ``y0`` and ``x0``.
    worst_token, worst_context : int
        Where the largest token and context terms were found.
    excluded_tokens, excluded_contexts : int
        Tokens (contexts) whose log-odds against the pivot are constant in both models
        (``sigma`` below ``1e-9`` of the largest): they carry no term.
    """

    d_llv: float
    token_term: float
    context_term: float
    token_sd_term: float
    context_sd_term: float
    lam: float
    d_fg: float
    d_f: float
    d_g: float
    bound: float
    paper_bound: float
    mean_kl: float
    dim: int
    draws: int
    pivot_token: int
    pivot_context: int
    worst_token: int
    worst_context: int
    excluded_tokens: int
    excluded_contexts: int
    n: int
    V: int
    d_a: int
    d_b: int

    def summary(self) -> dict[str, Any]:
        """Plain numbers for reports and JSON."""
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_frame(self, *, per_item: bool = True) -> Any:
        """One summary row; ``attrs["identified"]`` lists the distances (functions of the two
        distributions), ``attrs["raw"]`` the widths."""
        cols = [f.name for f in dataclasses.fields(self)]
        ident = [c for c in cols if c not in ("d_a", "d_b", "n", "V", "dim", "draws", "lam")]
        ident = [c for c in ident if not c.startswith(("pivot", "worst", "excluded"))]
        return _frame(self.summary(), ident, ["d_a", "d_b"])

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in self.summary().items()
        )
        return f"<table><caption>Distances</caption>{rows}</table>"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------- public API
def distances(
    a: NextTokenPredictor | Any,
    b: NextTokenPredictor | Any,
    *,
    pivot_token: int | str | None = None,
    pivot_context: int | str = 0,
    lam: float = DEFAULT_LAMBDA,
    dim: int | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    block: int | None = None,
) -> Distances:
    """``d_LLV`` and ``d_{f,g}`` between ``a`` and ``b`` (THEORY.md 10).

    Parameters
    ----------
    a, b : NextTokenPredictor
        On the same contexts and tokens (widths may differ).
    pivot_token : int or token label, optional
        ``y0``. Default: the token with the largest mean log-odds under ``a`` (a token every
        context gives weight to, so its log-odds against others are well measured).
    pivot_context : int or context label
        ``x0`` (default the first context).
    lam : float
        Weight of the standard-deviation terms (default ``1e-5``, the paper's).
    dim : int, optional
        Size ``m`` of each diversity set. Default ``min(d_a, d_b)``, capped by the number of
        usable tokens and contexts.
    draws : int
        Random diversity sets per side (seeded by ``seed``); ``d_{f,g}`` is the worst.
    block : int, optional
        Tokens per streamed block (default: about 4M entries per ``n x block`` buffer).

    Cost: two passes over the vocabulary, ``O(n V (d_a + d_b))``, and the ``(d_a + d_b)^2``
    covariance of the unembeddings, ``O(V (d_a + d_b)^2)``; memory ``O(n block + V)``.
    """
    a, b = as_predictor(a, "a"), as_predictor(b, "b")
    _check_pair(a, b)
    if not (isinstance(lam, int | float) and np.isfinite(lam) and lam >= 0):
        raise AllOrNoneError(f"lam must be a finite number >= 0, got {lam!r}")
    if not isinstance(draws, int | np.integer) or isinstance(draws, bool) or draws < 1:
        raise AllOrNoneError(f"draws must be an integer >= 1, got {draws!r}")
    if a.n < 3:
        raise AllOrNoneError(f"distances need at least 3 contexts, got n={a.n}")
    if a.V < 3:
        raise AllOrNoneError(f"distances need at least 3 tokens, got V={a.V}")
    y0 = _pivot_token(a, pivot_token)
    if isinstance(pivot_context, bool) or pivot_context is None:
        raise AllOrNoneError(
            f"pivot_context must be an index or a context label, got {pivot_context!r}"
        )
    x0 = int(a.row_indices(pivot_context)[0])
    blk = block or max(256, min(8192, (1 << 22) // max(a.n, 1)))

    Za, Zb, tau_a, tau_b = _first_pass(a, b, x0, blk)
    tok, ctx, kl, cov = _second_pass(a, b, y0, x0, Za, Zb, tau_a, tau_b, blk)
    sig_a, sig_b, t_tok = tok
    t_ctx = ctx

    tok_keep, tok_term, tok_sd, worst_tok, ex_tok = _terms(sig_a, sig_b, t_tok, y0)
    ctx_keep, ctx_term, ctx_sd, worst_ctx, ex_ctx = _terms(tau_a, tau_b, t_ctx, x0)
    d_llv = max(tok_term, ctx_term, lam * tok_sd, lam * ctx_sd)

    m_cap = min(int(tok_keep.sum()), int(ctx_keep.sum()))
    m = min(a.d, b.d) if dim is None else _int(dim, "dim")
    if dim is not None and m > m_cap:
        raise AllOrNoneError(
            f"dim={m} is larger than the usable tokens/contexts ({m_cap}): pass dim <= {m_cap}"
        )
    m = max(1, min(m, m_cap)) if m_cap >= 1 else 0
    rng = np.random.default_rng(seed)
    d_f = d_g = 0.0
    if m >= 1:
        tok_pool, ctx_pool = np.flatnonzero(tok_keep), np.flatnonzero(ctx_keep)
        for _ in range(int(draws)):
            S = np.sort(rng.choice(tok_pool, size=m, replace=False))
            X = np.sort(rng.choice(ctx_pool, size=m, replace=False))
            d_f = max(d_f, _d_svd_f(a, b, S, y0))
            d_g = max(d_g, _d_svd_g(a, b, X, x0, cov))
    return Distances(
        d_llv=float(d_llv),
        token_term=float(tok_term),
        context_term=float(ctx_term),
        token_sd_term=float(tok_sd),
        context_sd_term=float(ctx_sd),
        lam=float(lam),
        d_fg=float(max(d_f, d_g)),
        d_f=float(d_f),
        d_g=float(d_g),
        bound=float(min(2 * d_llv**2, 1.0)) if np.isfinite(d_llv) else 1.0,
        paper_bound=float(2 * m * d_llv),
        mean_kl=float(kl),
        dim=int(m),
        draws=int(draws),
        pivot_token=int(y0),
        pivot_context=int(x0),
        worst_token=int(worst_tok),
        worst_context=int(worst_ctx),
        excluded_tokens=int(ex_tok),
        excluded_contexts=int(ex_ctx),
        n=a.n,
        V=a.V,
        d_a=a.d,
        d_b=b.d,
    )


def representation_dissimilarity(
    a: NextTokenPredictor | Any,
    b: NextTokenPredictor | Any,
    *,
    tokens: Any,
    contexts: Any,
    pivot_token: int | str,
    pivot_context: int | str,
) -> tuple[float, float]:
    """``(d_f, d_g)`` for given diversity sets: ``1 - m_SVD`` of the standardised
    ``(g(y_j) - g(y0))^T f(x)`` over the contexts and of ``(f(x_i) - f(x0))^T g(y)`` over the
    vocabulary (THEORY.md 10). ``tokens`` and ``contexts`` must not contain the pivots."""
    a, b = as_predictor(a, "a"), as_predictor(b, "b")
    _check_pair(a, b)
    y0, x0 = a.token_index(pivot_token), int(a.row_indices(pivot_context)[0])
    S, X = a.col_indices(tokens), a.row_indices(contexts)
    if y0 in set(S.tolist()) or x0 in set(X.tolist()):
        raise AllOrNoneError("tokens/contexts contain the pivot: leave the pivot out of the sets")
    if len(S) == 0 or len(X) == 0:
        raise AllOrNoneError("tokens and contexts must each name at least one item")
    blk = max(256, min(8192, (1 << 22) // max(a.n, 1)))
    cov = _unembedding_cov(a, b, blk)
    return _d_svd_f(a, b, S, y0), _d_svd_g(a, b, X, x0, cov)


# ---------------------------------------------------------------------- helpers
def _int(x: Any, name: str) -> int:
    if not isinstance(x, int | np.integer) or isinstance(x, bool) or x < 1:
        raise AllOrNoneError(f"{name} must be an integer >= 1, got {x!r}")
    return int(x)


def _pivot_token(a: NextTokenPredictor, pivot: int | str | None) -> int:
    if pivot is None:
        # mean log-odds over contexts = mean_x f(x)^T g(y) + const
        return int(np.argmax(a.G_matmul(a.F.mean(axis=0, dtype=np.float64))))  # streamed
    if isinstance(pivot, bool):
        raise AllOrNoneError(f"pivot_token must be an index or a token label, got {pivot!r}")
    return a.token_index(pivot)


def _f64(X: np.ndarray) -> np.ndarray:
    """``X`` in float64 (a copy only when stored in float32: used for ``F``, n x d, and for
    row blocks and selections of ``G``, never for the whole vocabulary)."""
    return X.astype(np.float64, copy=False)


def _blocks(V: int, blk: int):
    for start in range(0, V, blk):
        yield slice(start, min(V, start + blk))


class _Moments:
    """Per-row running mean and sum of squared deviations, merged block by block (Chan et
    al.): stable for values with a large common offset."""

    def __init__(self, rows: int) -> None:
        self.count = 0
        self.mean = np.zeros(rows)
        self.m2 = np.zeros(rows)

    def add(self, X: np.ndarray) -> None:
        c = X.shape[1]
        mu = X.mean(axis=1)
        m2 = ((X - mu[:, None]) ** 2).sum(axis=1)
        tot = self.count + c
        delta = mu - self.mean
        self.mean = self.mean + delta * (c / tot)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * c / tot)
        self.count = tot

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2, 0.0) / max(self.count, 1))


def _first_pass(a, b, x0: int, blk: int):
    """Log-normalisers of every context and ``tau_x = sd_y(lp(y|x) - lp(y|x0))``."""
    n = a.n
    Fa, Fb = _f64(a.F), _f64(b.F)
    ma, mb = np.full(n, -np.inf), np.full(n, -np.inf)
    sa, sb = np.zeros(n), np.zeros(n)
    ua, ub = _Moments(n), _Moments(n)
    for sl in _blocks(a.V, blk):
        la, lb = Fa @ _f64(a.G[sl]).T, Fb @ _f64(b.G[sl]).T
        for L, m, s in ((la, ma, sa), (lb, mb, sb)):
            bm = L.max(axis=1)
            new = np.maximum(m, bm)
            s *= np.exp(m - new)
            s += np.exp(L - new[:, None]).sum(axis=1)
            m[:] = new
        ua.add(la - la[x0])
        ub.add(lb - lb[x0])
    return ma + np.log(sa), mb + np.log(sb), ua.sd, ub.sd


def _second_pass(a, b, y0: int, x0: int, Za, Zb, tau_a, tau_b, blk: int):
    """Token terms (per token), context terms (per context), the mean KL and the covariance
    of the stacked centred unembeddings ``[g_a, g_b]`` over the vocabulary."""
    n, V = a.n, a.V
    Fa, Fb = _f64(a.F), _f64(b.F)
    la0, lb0 = Fa @ _f64(a.G[y0]), Fb @ _f64(b.G[y0])  # logits of the pivot token, (n,)
    lpa0, lpb0 = la0 - Za, lb0 - Zb
    sig_a, sig_b = np.zeros(V), np.zeros(V)
    t_tok = np.zeros(V)
    with np.errstate(divide="ignore", invalid="ignore"):
        ia, ib = 1.0 / tau_a, 1.0 / tau_b
    ia[~np.isfinite(ia)] = 0.0
    ib[~np.isfinite(ib)] = 0.0
    dmom, pmom = _Moments(n), _Moments(n)
    kl = np.zeros(n)
    mu_a, mu_b = a.g_mean, b.g_mean
    D = a.d + b.d
    cov = np.zeros((D, D))
    for sl in _blocks(V, blk):
        Ga, Gb = _f64(a.G[sl]), _f64(b.G[sl])
        la, lb = Fa @ Ga.T, Fb @ Gb.T
        lpa, lpb = la - Za[:, None], lb - Zb[:, None]
        # token side: variances over the contexts, per token column
        sa = (la - la0[:, None]).std(axis=0)
        sb = (lb - lb0[:, None]).std(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            wa = np.where(sa > 0, 1.0 / sa, 0.0)
            wb = np.where(sb > 0, 1.0 / sb, 0.0)
        t = (lpa * wa - lpb * wb).std(axis=0)
        tp = (np.outer(lpa0, wa) - np.outer(lpb0, wb)).std(axis=0)
        sig_a[sl], sig_b[sl], t_tok[sl] = sa, sb, np.maximum(t, tp)
        # context side: variances over the tokens, merged across blocks
        dmom.add(la * ia[:, None] - lb * ib[:, None])
        pmom.add(np.outer(ia, la[x0]) - np.outer(ib, lb[x0]))
        # KL(p_a || p_b) per context
        kl += (np.exp(lpa) * (lpa - lpb)).sum(axis=1)
        X = np.hstack([Ga - mu_a, Gb - mu_b])
        cov += X.T @ X
    cov /= V
    t_ctx = np.maximum(dmom.sd, pmom.sd)
    return (sig_a, sig_b, t_tok), t_ctx, max(float(kl.mean()), 0.0), (cov, a.d)


def _unembedding_cov(a, b, blk: int):
    D = a.d + b.d
    cov = np.zeros((D, D))
    for sl in _blocks(a.V, blk):
        X = np.hstack([_f64(a.G[sl]) - a.g_mean, _f64(b.G[sl]) - b.g_mean])
        cov += X.T @ X
    return cov / a.V, a.d


def _terms(sd_a, sd_b, t, pivot: int):
    """Apply the zero-variance rule; returns (usable mask, max term, max |sd_a - sd_b|,
    argmax of the term, number excluded)."""
    scale = max(float(sd_a.max()), float(sd_b.max()), 0.0)
    floor = SD_FLOOR * scale
    za, zb = sd_a <= floor, sd_b <= floor
    both = za & zb
    both[pivot] = True
    keep = ~(za | zb)
    keep[pivot] = False
    term = np.where(keep, t, 0.0)
    one = (za ^ zb) & ~both  # constant in one model only: the distributions differ
    term = np.where(one, np.inf, term)
    sd_diff = np.where(both, 0.0, np.abs(sd_a - sd_b))
    worst = int(np.argmax(term)) if term.size else -1
    excluded = int(both.sum()) - 1  # the pivot itself is not counted
    return keep, float(term.max()), float(sd_diff.max()), worst, excluded


def _m_svd(Xa: np.ndarray, Xb: np.ndarray, Caa, Cab, Cbb) -> float:
    """Mean singular value of the cross-covariance of the standardised coordinates, given
    the covariances (``Caa``, ``Cbb`` only through their diagonals)."""
    sa, sb = np.sqrt(np.diag(Caa)), np.sqrt(np.diag(Cbb))
    ok = (sa > 0) & (sb > 0)
    if not ok.any():
        return 0.0
    C = Cab[np.ix_(ok, ok)] / np.outer(sa[ok], sb[ok])
    s = np.linalg.svd(C, compute_uv=False)
    return float(np.clip(s.sum() / ok.sum(), 0.0, 1.0))


def _d_svd_f(a, b, S: np.ndarray, y0: int) -> float:
    """``1 - m_SVD`` of the log-odds of the tokens ``S`` against ``y0`` over the contexts."""
    A = a.F_matmul((_f64(a.G[S]) - _f64(a.G[y0])).T)
    B = b.F_matmul((_f64(b.G[S]) - _f64(b.G[y0])).T)
    A -= A.mean(axis=0)
    B -= B.mean(axis=0)
    n = A.shape[0]
    return 1.0 - _m_svd(A, B, A.T @ A / n, A.T @ B / n, B.T @ B / n)


def _d_svd_g(a, b, X: np.ndarray, x0: int, cov) -> float:
    """``1 - m_SVD`` of ``(f(x_i) - f(x0))^T g(y)`` over the vocabulary, from the covariance of
    the stacked centred unembeddings."""
    C, da = cov
    Na = _f64(a.F[X]) - _f64(a.F[x0])
    Nb = _f64(b.F[X]) - _f64(b.F[x0])
    Caa = Na @ C[:da, :da] @ Na.T
    Cab = Na @ C[:da, da:] @ Nb.T
    Cbb = Nb @ C[da:, da:] @ Nb.T
    return 1.0 - _m_svd(Na, Nb, Caa, Cab, Cbb)
