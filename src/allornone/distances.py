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
reported as ``paper_bound``) whenever ``d_LLV <= M``, and ``d_{f,g} <= 1`` always.
:func:`distances` takes both maxima over every token and every context, so the bound holds for
every diversity set with these pivots. The paper's code leaves one label out and takes the
input term over one chosen diversity set, with the pivots chosen to make the terms small:
:func:`paper_d_llv` is that estimator (at most :func:`distances`' value; it reports how much it
moves with the pivots).
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

__all__ = [
    "DEFAULT_LAMBDA",
    "Distances",
    "PaperDLLV",
    "LogitDistances",
    "distances",
    "logit_distances",
    "paper_d_llv",
    "representation_dissimilarity",
]


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


# ---------------------------------------------------------------------- the paper's estimator
#: Candidate label pivots of :func:`paper_d_llv` when the vocabulary is larger (all otherwise).
DEFAULT_CANDIDATES = 16
#: Random input diversity sets :func:`paper_d_llv` chooses from (at most ``n // (dim + 1)``).
DEFAULT_SAMPLES = 100


@dataclass(frozen=True, eq=False)
class PaperDLLV(TableMixin):
    """``d_LLV`` estimated the way the paper's code does (THEORY.md 10.1, "the paper's
    estimator"); see :func:`paper_d_llv`.

    Attributes
    ----------
    d_llv : float
        ``max(label_term, input_term, lam label_sd_term, lam input_sd_term)`` at the chosen
        pivots, left-out label and input set (the paper's ``d_prob`` with ``sum_or_max="max"``).
    label_term, input_term : float
        The largest label-side terms (pivot terms included) over the labels other than the
        pivot and the left-out one, and the largest input-side terms over the input set.
    label_sd_term, input_sd_term : float
        The largest ``|sigma^a - sigma^b|`` and ``|tau^a - tau^b|`` on the same labels / inputs,
        with the paper's unbiased (``1/(count - 1)``) variances.
    lam : float
    pivot_token, left_out, input_pivot : int
        ``y0``, the left-out label and ``x0`` (the first of the chosen input set).
    input_set : tuple of int
        The other ``dim`` inputs of the chosen set.
    candidates : ndarray (int)
        The label pivots tried; ``label_terms`` the label term of each (with its best
        left-out label): the pivot sensitivity.
    input_sets : ndarray (int, samples x (dim + 1))
        The input sets tried (first column the pivot); ``input_terms`` the input term of each.
    d_llv_worst : float
        The same maximum with the worst candidate pivot and the worst input set tried: how
        far the estimate moves with the pivots.
    dim : int
        Size of the input diversity set (without its pivot).
    n, V, d_a, d_b : int
    """

    d_llv: float
    label_term: float
    input_term: float
    label_sd_term: float
    input_sd_term: float
    lam: float
    pivot_token: int
    left_out: int
    input_pivot: int
    input_set: tuple[int, ...]
    d_llv_worst: float
    dim: int
    n: int
    V: int
    d_a: int
    d_b: int
    candidates: np.ndarray = dataclasses.field(repr=False)
    label_terms: np.ndarray = dataclasses.field(repr=False)
    input_sets: np.ndarray = dataclasses.field(repr=False)
    input_terms: np.ndarray = dataclasses.field(repr=False)

    def summary(self) -> dict[str, Any]:
        """Plain numbers for reports and JSON (the pivot sensitivity as min / median / max)."""
        out = {
            f.name: plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.repr and f.name != "input_set"
        }
        out["input_set_size"] = len(self.input_set)
        for name in ("label_terms", "input_terms"):
            v = np.asarray(getattr(self, name), dtype=float)
            v = v[np.isfinite(v)]
            stats = (float(v.min()), float(np.median(v)), float(v.max())) if v.size else (0,) * 3
            for key, x in zip(("min", "median", "max"), stats, strict=True):
                out[f"{name}_{key}"] = float(x)
        out["pivots_tried"] = int(len(self.candidates))
        out["input_sets_tried"] = int(len(self.input_sets))
        return out

    def to_frame(self, *, per_item: bool = True) -> Any:
        """One summary row; ``attrs["identified"]`` lists the distances and terms."""
        s = self.summary()
        ident = [k for k in s if k.endswith(("_term", "_terms_min", "_terms_median"))]
        ident += [k for k in s if k.endswith("_terms_max")] + ["d_llv", "d_llv_worst"]
        return _frame(s, ident, ["d_a", "d_b"])

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in self.summary().items()
        )
        return f"<table><caption>d_LLV, the paper's estimator</caption>{rows}</table>"


def paper_d_llv(
    a: NextTokenPredictor | Any,
    b: NextTokenPredictor | Any,
    *,
    pivot_token: int | str | None = None,
    left_out: int | str | None = None,
    input_sets: Any = None,
    candidates: int = DEFAULT_CANDIDATES,
    samples: int = DEFAULT_SAMPLES,
    dim: int | None = None,
    lam: float = DEFAULT_LAMBDA,
    seed: int = 0,
    block: int | None = None,
) -> PaperDLLV:
    """``d_LLV`` by the estimator of the paper's code (arXiv 2506.03784, THEORY.md 10.1).

    The paper's code (``d_prob`` in ``bemigini/close-dist-rep-sim``, with ``dist_type="max"``
    and ``sum_or_max="max"``, as in its figures) does not take the maximum over every label
    and context as :func:`distances` does; it

    - picks the label pivot ``y0`` and one left-out label that make the largest label term
      smallest (the label term is then the largest over the other labels);
    - draws ``samples`` disjoint random input sets of ``dim + 1`` inputs (the first the input
      pivot ``x0``), and keeps the one whose largest input term is smallest;
    - reports ``max(label term, input term, lam label sd term, lam input sd term)``.

    Same terms as :func:`distances` (variances over the contexts for labels, over the whole
    vocabulary for inputs); the sd terms use the paper's unbiased variances. So the estimate is
    at most :func:`distances`' value with the same pivots, and it moves with the pivots:
    ``label_terms``, ``input_terms`` and ``d_llv_worst`` report by how much.

    Parameters
    ----------
    pivot_token, left_out : int or token label, optional
        Fix ``y0`` (and the left-out label). Default: searched. The paper tries every label as
        the pivot (its label sets have up to 18); here every token when ``V <= candidates``,
        else ``candidates`` tokens: the pivot of :func:`distances` and seeded random others.
    input_sets : sequence of sequences of contexts, optional
        The input sets to choose from, each ``[x0, x_1, ..., x_m]``; one set fixes them.
        Default: ``samples`` disjoint seeded random sets of ``dim + 1`` contexts.
    dim : int, optional
        ``m``, the inputs of a set besides its pivot. Default ``d_a`` (the paper's: the width
        of the first model), capped at ``n - 1``; ``samples`` is capped at ``n // (m + 1)``.

    The paper's code starts its search of input sets from 1, so it keeps the first set when
    every set's largest term is at least 1; here the smallest is always kept.

    Cost: two streamed passes over the vocabulary, ``O(n V (d_a + d_b + candidates))``.
    """
    a, b = as_predictor(a, "a"), as_predictor(b, "b")
    _check_pair(a, b)
    if not (isinstance(lam, int | float) and np.isfinite(lam) and lam >= 0):
        raise AllOrNoneError(f"lam must be a finite number >= 0, got {lam!r}")
    if a.n < 3 or a.V < 3:
        raise AllOrNoneError(f"distances need at least 3 contexts and 3 tokens, got {a.n}, {a.V}")
    n, V = a.n, a.V
    blk = block or max(256, min(8192, (1 << 22) // max(n, 1)))
    rng = np.random.default_rng(seed)

    # label pivots to try
    if pivot_token is not None:
        cands = np.array([_pivot_token(a, pivot_token)])
    elif V <= _int(candidates, "candidates"):
        cands = np.arange(V)
    else:
        first = _pivot_token(a, None)
        others = np.setdiff1d(np.arange(V), [first])
        cands = np.concatenate([[first], np.sort(rng.choice(others, candidates - 1, False))])
    lo_fixed = None if left_out is None else a.token_index(left_out)
    if lo_fixed is not None and len(cands) == 1 and lo_fixed == int(cands[0]):
        raise AllOrNoneError("left_out is the pivot token: leave out another label")

    # input sets to choose from
    if input_sets is not None:
        sets = [a.row_indices(list(s)) for s in input_sets]
        if not sets or any(len(s) < 2 for s in sets) or len({len(s) for s in sets}) != 1:
            raise AllOrNoneError(
                "input_sets must be a non-empty list of equally long sets [x0, x1, ...] "
                "with at least 2 contexts each"
            )
        S = np.stack(sets)
    else:
        m = min(a.d if dim is None else _int(dim, "dim"), n - 1)
        k = max(1, min(_int(samples, "samples"), n // (m + 1)))
        S = rng.choice(n, size=k * (m + 1), replace=False).reshape(k, m + 1)
    m = S.shape[1] - 1
    xi, x0i = S[:, 1:].reshape(-1), np.repeat(S[:, 0], m)

    Fa, Fb = _f64(a.F), _f64(b.F)
    # pass 1: log-normalisers and tau over the vocabulary for every (x, x0) of the input sets
    Za, Zb = np.full(n, -np.inf), np.full(n, -np.inf)
    sa_, sb_ = np.zeros(n), np.zeros(n)
    ua, ub = _Moments(len(xi)), _Moments(len(xi))
    for sl in _blocks(V, blk):
        la, lb = Fa @ _f64(a.G[sl]).T, Fb @ _f64(b.G[sl]).T
        for L, mx, s in ((la, Za, sa_), (lb, Zb, sb_)):
            new = np.maximum(mx, L.max(axis=1))
            s *= np.exp(mx - new)
            s += np.exp(L - new[:, None]).sum(axis=1)
            mx[:] = new
        ua.add(la[xi] - la[x0i])
        ub.add(lb[xi] - lb[x0i])
    Za, Zb = Za + np.log(sa_), Zb + np.log(sb_)
    tau_a, tau_b = ua.sd, ub.sd

    # pass 2: label terms per candidate pivot (per token, complete within a block) and the
    # input terms (variances over the tokens, merged across blocks)
    P = len(cands)
    lpa_p = Fa @ _f64(a.G[cands]).T - Za[:, None]  # (n, P) log-probs of the candidates
    lpb_p = Fb @ _f64(b.G[cands]).T - Zb[:, None]
    T, SA, SB = np.zeros((P, V)), np.zeros((P, V)), np.zeros((P, V))
    with np.errstate(divide="ignore", invalid="ignore"):
        ia, ib = np.where(tau_a > 0, 1.0 / tau_a, 0.0), np.where(tau_b > 0, 1.0 / tau_b, 0.0)
    dmom, pmom = _Moments(len(xi)), _Moments(len(xi))
    for sl in _blocks(V, blk):
        lpa = Fa @ _f64(a.G[sl]).T - Za[:, None]
        lpb = Fb @ _f64(b.G[sl]).T - Zb[:, None]
        for j in range(P):
            sa = (lpa - lpa_p[:, j : j + 1]).std(axis=0)
            sb = (lpb - lpb_p[:, j : j + 1]).std(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                wa = np.where(sa > 0, 1.0 / sa, 0.0)
                wb = np.where(sb > 0, 1.0 / sb, 0.0)
            t = (lpa * wa - lpb * wb).std(axis=0)
            tp = (np.outer(lpa_p[:, j], wa) - np.outer(lpb_p[:, j], wb)).std(axis=0)
            T[j, sl], SA[j, sl], SB[j, sl] = np.maximum(t, tp), sa, sb
        dmom.add(lpa[xi] * ia[:, None] - lpb[xi] * ib[:, None])
        pmom.add(lpa[x0i] * ia[:, None] - lpb[x0i] * ib[:, None])
    # unbiased variances for the sd terms (the terms themselves do not depend on it)
    cn, cv = np.sqrt(n / (n - 1)), np.sqrt(V / (V - 1))

    # label side: per candidate, the best left-out label and its label term
    lab, lab_sd, los = np.zeros(P), np.zeros(P), np.zeros(P, dtype=int)
    for j, p in enumerate(cands):
        t, sd = _pivot_terms(SA[j], SB[j], T[j], int(p))
        if lo_fixed is not None and lo_fixed == p:  # a pivot cannot be left out
            lab[j], lab_sd[j], los[j] = np.inf, np.inf, lo_fixed
            continue
        lo = (
            lo_fixed
            if lo_fixed is not None
            else int(np.argmax(np.where(np.arange(V) == p, -1.0, t)))
        )
        rest = np.delete(np.arange(V), [lo])
        lab[j], lab_sd[j], los[j] = float(t[rest].max()), float(sd[rest].max()) * cn, lo
    jb = int(np.argmin(lab))
    # input side: per set, the largest term over its inputs (tokens constant in both: no term)
    t_in = np.maximum(dmom.sd, pmom.sd).reshape(len(S), m)
    sd_in = (np.abs(tau_a - tau_b) * cv).reshape(len(S), m)
    zero = ((tau_a <= 0) & (tau_b <= 0)).reshape(len(S), m)
    one = ((tau_a <= 0) ^ (tau_b <= 0)).reshape(len(S), m)
    t_in = np.where(zero, 0.0, np.where(one, np.inf, t_in))
    inp = t_in.max(axis=1)
    best = int(np.argmin(inp))
    d = max(lab[jb], inp[best], lam * lab_sd[jb], lam * float(sd_in[best].max()))
    worst = max(lab.max(), inp.max(), lam * lab_sd.max(), lam * float(sd_in.max()))
    return PaperDLLV(
        d_llv=float(d),
        label_term=float(lab[jb]),
        input_term=float(inp[best]),
        label_sd_term=float(lab_sd[jb]),
        input_sd_term=float(sd_in[best].max()),
        lam=float(lam),
        pivot_token=int(cands[jb]),
        left_out=int(los[jb]),
        input_pivot=int(S[best, 0]),
        input_set=tuple(int(x) for x in S[best, 1:]),
        d_llv_worst=float(worst),
        dim=int(m),
        n=n,
        V=V,
        d_a=a.d,
        d_b=b.d,
        candidates=cands,
        label_terms=lab,
        input_sets=S,
        input_terms=inp,
    )


def _pivot_terms(sd_a: np.ndarray, sd_b: np.ndarray, t: np.ndarray, pivot: int):
    """Per-token terms and ``|sd_a - sd_b|`` for one pivot with the zero-variance rule of
    :func:`distances` (constant in both: no term; in one only: infinite); the pivot gets 0."""
    floor = SD_FLOOR * max(float(sd_a.max()), float(sd_b.max()), 0.0)
    za, zb = sd_a <= floor, sd_b <= floor
    term = np.where(za & zb, 0.0, np.where(za ^ zb, np.inf, t))
    sd = np.where(za & zb, 0.0, np.abs(sd_a - sd_b))
    term[pivot] = sd[pivot] = 0.0
    return term, sd


# ---------------------------------------------------------------------- d_logit and d_rep
#: Pivot labels and label sets per pivot of :func:`logit_distances` (the authors use 100, 200).
DEFAULT_REP_PIVOTS = 10
DEFAULT_REP_COMBINATIONS = 10


@dataclass(frozen=True, eq=False)
class LogitDistances(TableMixin):
    """``d_logit`` and ``d_rep`` between two predictors (THEORY.md 10.5); see
    :func:`logit_distances`.

    Attributes
    ----------
    d_logit_sq, d_logit : float
        Mean over the contexts of the squared Euclidean distance between the two models'
        centred logit vectors (centred over the tokens), and its square root. A function of
        the two distributions (identified); 0 for equivalent models.
    d_rep_sq, d_rep : float
        Mean over the draws (pivot label, ``d_a`` other labels) and the contexts of
        ``||f_a(x) - A f_b(x)||^2`` with ``A`` the map that the log-odds of the drawn labels
        determine, and its square root. In the coordinates of ``a`` (not identified, not
        symmetric); 0 for equivalent models.
    bound : float
        ``2 d_a mean_draws(1 / sigma_min(L_a)^2) d_logit_sq``: an upper bound of ``d_rep_sq``
        (THEORY.md 10.5), ``L_a`` the ``d_a x d_a`` unembedding differences of a draw.
    d_rep_sq_authors : float
        ``d_rep_sq / (pivots x combinations)``: the number the authors' code prints (it divides
        by the number of draws twice).
    worst_cond : float
        The largest condition number of the ``L_a`` drawn.
    pivots : ndarray (int)
    label_sets : ndarray (int, draws x d_a)
        The drawn labels (draw ``i`` uses pivot ``pivots[i // combinations]``).
    per_draw : ndarray
        ``mean_x ||f_a(x) - A f_b(x)||^2`` per draw.
    """

    d_logit_sq: float
    d_logit: float
    d_rep_sq: float
    d_rep: float
    bound: float
    d_rep_sq_authors: float
    worst_cond: float
    n_pivots: int
    combinations: int
    n: int
    V: int
    d_a: int
    d_b: int
    pivots: np.ndarray = dataclasses.field(repr=False)
    label_sets: np.ndarray = dataclasses.field(repr=False)
    per_draw: np.ndarray = dataclasses.field(repr=False)

    def summary(self) -> dict[str, Any]:
        """Plain numbers for reports and JSON."""
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.repr}

    def to_frame(self, *, per_item: bool = True) -> Any:
        """One summary row; ``attrs["identified"]``: ``d_logit_sq``, ``d_logit`` (``d_rep``
        is in the coordinates of ``a``: raw)."""
        s = self.summary()
        return _frame(s, ["d_logit_sq", "d_logit"], ["d_rep_sq", "d_rep", "bound"])

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in self.summary().items()
        )
        return f"<table><caption>d_logit and d_rep</caption>{rows}</table>"


def logit_distances(
    a: NextTokenPredictor | Any,
    b: NextTokenPredictor | Any,
    *,
    pivots: Any = None,
    label_sets: Any = None,
    n_pivots: int = DEFAULT_REP_PIVOTS,
    combinations: int = DEFAULT_REP_COMBINATIONS,
    seed: int = 0,
    block: int | None = None,
) -> LogitDistances:
    """``d_logit`` and ``d_rep`` (Nielsen, Marconato, Gresele, Dittadi and Buchholz, *Logit
    Distance Bounds Representational Similarity*, arXiv 2602.15438; THEORY.md 10.5).

    ``d_logit_sq = mean_x sum_y (l_a(x, y) - l_b(x, y))^2`` with ``l(x, y) = f(x)^T (g(y) -
    mean_y' g(y'))`` the logits centred over the tokens (a function of the distribution).

    ``d_rep_sq``: for each draw, a pivot label ``p`` and ``d_a`` other labels ``y_1..y_da``,
    ``L_a``, ``L_b`` the matrices of rows ``g(y_j) - g(p)`` (``d_a x d_a`` and ``d_a x d_b``),
    ``A = L_a^-1 L_b`` (with equal log-odds of the labels, ``f_a = A f_b``) and the draw's value
    ``mean_x ||f_a(x) - A f_b(x)||^2``; ``d_rep_sq`` is the mean over the draws. Draws as in the
    authors' code: ``rng = numpy.random.default_rng(seed)``, ``n_pivots`` pivots
    ``rng.choice(V, n_pivots, replace=False)``, then for each pivot ``combinations`` label sets
    ``rng.choice(V - 1, d_a, replace=False)`` indexing the labels other than the pivot.

    Parameters
    ----------
    pivots, label_sets : optional
        Fixed draws instead: ``pivots`` (P labels) and ``label_sets`` (P x C x d_a labels, or
        P x d_a for C = 1), none of a pivot's sets containing it.
    n_pivots, combinations : int
        Default 10 and 10 (the authors use 100 and 200: a ``d_a x d_a`` solve each).

    Cost: one streamed pass over the vocabulary (``O(n V (d_a + d_b))``) and per draw
    ``O(d_a^3 + n d_a d_b)``.
    """
    a, b = as_predictor(a, "a"), as_predictor(b, "b")
    _check_pair(a, b)
    n, V, da = a.n, a.V, a.d
    if V < da + 1:
        raise AllOrNoneError(
            f"d_rep needs at least d_a + 1 = {da + 1} tokens (a pivot and d_a labels), got V={V}"
        )
    # draws
    if pivots is None:
        if label_sets is not None:
            raise AllOrNoneError("label_sets need their pivots: pass pivots too")
        P, C = _int(n_pivots, "n_pivots"), _int(combinations, "combinations")
        if P > V:
            raise AllOrNoneError(f"n_pivots={P} is larger than the vocabulary (V={V})")
        rng = np.random.default_rng(seed)
        piv = rng.choice(np.arange(V), P, replace=False)
        sets = []
        for p in piv:
            for _ in range(C):
                j = rng.choice(np.arange(V - 1), da, replace=False)
                sets.append(np.where(j < p, j, j + 1))  # index into the labels without p
        S = np.array(sets).reshape(P, C, da)
    else:
        piv = np.array([a.token_index(p) for p in np.atleast_1d(np.asarray(pivots))])
        if label_sets is None:
            raise AllOrNoneError("fixed pivots need their label_sets (P x C x d_a labels)")
        S = np.asarray(label_sets)
        if S.ndim == 2:
            S = S[:, None, :]
        if S.ndim != 3 or S.shape[0] != len(piv) or S.shape[2] != da:
            raise AllOrNoneError(
                f"label_sets must have shape (P, C, d_a) = ({len(piv)}, C, {da}), got {S.shape}"
            )
        S = np.stack([a.col_indices(row.tolist()) for row in S.reshape(-1, da)]).reshape(S.shape)
        if any(p in set(S[i].reshape(-1).tolist()) for i, p in enumerate(piv)):
            raise AllOrNoneError("a label set contains its pivot: leave the pivot out")
        P, C = S.shape[0], S.shape[1]

    # d_logit (and the mean KL) streamed over the vocabulary
    blk = block or max(256, min(8192, (1 << 22) // max(n, 1)))
    Fa, Fb = _f64(a.F), _f64(b.F)
    ma, mb = a.g_mean, b.g_mean
    sq = np.zeros(n)
    for sl in _blocks(V, blk):
        sq += ((Fa @ (_f64(a.G[sl]) - ma).T - Fb @ (_f64(b.G[sl]) - mb).T) ** 2).sum(axis=1)
    d_logit_sq = float(sq.mean())

    # d_rep: one solve per draw
    per, inv_s2, conds = [], [], []
    for i, p in enumerate(piv):
        ga0, gb0 = _f64(a.G[p]), _f64(b.G[p])
        for c in range(C):
            La = _f64(a.G[S[i, c]]) - ga0
            Lb = _f64(b.G[S[i, c]]) - gb0
            s = np.linalg.svd(La, compute_uv=False)
            if s[-1] <= s[0] * np.finfo(np.float64).eps * da:
                raise AllOrNoneError(
                    f"the unembedding differences of {da} labels against pivot {int(p)} do not "
                    "span R^d_a in model a (singular): d_rep needs unembeddings that span it"
                )
            A = np.linalg.solve(La, Lb)  # d_a x d_b
            R = Fa - Fb @ A.T
            per.append(float((R * R).sum(axis=1).mean()))
            inv_s2.append(1.0 / s[-1] ** 2)
            conds.append(float(s[0] / s[-1]))
    per_draw = np.array(per)
    d_rep_sq = float(per_draw.mean())
    return LogitDistances(
        d_logit_sq=d_logit_sq,
        d_logit=float(np.sqrt(d_logit_sq)),
        d_rep_sq=d_rep_sq,
        d_rep=float(np.sqrt(d_rep_sq)),
        bound=float(2 * da * np.mean(inv_s2) * d_logit_sq),
        d_rep_sq_authors=d_rep_sq / (P * C),
        worst_cond=float(max(conds)),
        n_pivots=int(P),
        combinations=int(C),
        n=n,
        V=V,
        d_a=da,
        d_b=b.d,
        pivots=piv,
        label_sets=S.reshape(P * C, da),
        per_draw=per_draw,
    )
