"""Sampling the equivalence class of a predictor, adversarial members included (THEORY.md 4).

Every model of width ``dim >= k`` with the same distribution has the form

    f~(x) = T [A e_f(x); u(x); 0],        g~(y) = T^{-T} [A^{-T} e_g(y); 0; w(y); 0] + c

with ``T`` in GL(dim), ``A`` in GL(k), any offset ``c`` and *arbitrary* junk ``u`` (n x d_u)
and ``w`` (V x d_w). :func:`sample_equivalent` draws one. The junk is where non-identified
properties live, so choosing it on purpose builds counterexamples:

- ``junk="random"``: Gaussian junk, scaled like the model's own junk (or like its
  identified part when it has none).
- ``junk="zero"``: no junk at all (the effective model, padded and mixed by ``T``).
- ``junk="shuffle"``: the model's own junk coordinates, permuted across contexts / tokens
  (same marginal statistics, every link to the context or token destroyed).
- ``junk="adversarial"``: large junk (``scale`` x the identified part, default 10),
  orthogonalised across contexts against ``e_f`` and across tokens against ``e_g``, in at
  least one dimension on each side. It breaks every direction-level property that depends on
  the junk: raw parallelism, probes reading ``J_f``, steering through ``J_g``, strong
  relational linearity.
- ``junk=(u, w)``: explicit arrays, for hand-built counterexamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._tables import PlainRepr
from ._validation import AllOrNoneError, AllOrNoneTypeError, to_numpy
from .linalg import random_invertible
from .predictor import NextTokenPredictor, as_predictor
from .structure import Structure
from .structure import structure as _structure

JUNK_MODES = ("random", "zero", "shuffle", "adversarial")


@dataclass(eq=False)
class EquivalentSample(PlainRepr):
    """A sampled member of the equivalence class and how it was built.

    Attributes
    ----------
    model : NextTokenPredictor (n x dim, V x dim)
    T : ndarray (dim, dim)
    A : ndarray (k, k)
    c : ndarray (dim,)
    u : ndarray (n, d_u);  w : ndarray (V, d_w)
    blocks : dict with the block sizes ``k``, ``d_u``, ``d_w``, ``d_zero``.
    f_map : ndarray (dim, d)
        ``T[:, :k] A U^T``: the identified part of ``f~`` is ``f_map @ f`` for every context.
    g_map : ndarray (dim, d)
        ``T^{-T}[:, :k] A^{-T} U^T``: the identified part of ``g0~`` is ``g_map @ g0``.
    """

    model: NextTokenPredictor
    T: np.ndarray = field(repr=False)
    A: np.ndarray = field(repr=False)
    c: np.ndarray = field(repr=False)
    u: np.ndarray = field(repr=False)
    w: np.ndarray = field(repr=False)
    blocks: dict
    f_map: np.ndarray = field(repr=False)
    g_map: np.ndarray = field(repr=False)
    junk: str


def sample_equivalent(
    model: NextTokenPredictor | Any,
    *,
    dim: int | None = None,
    seed: int | np.random.Generator | None = None,
    junk: str | tuple = "random",
    scale: float | None = None,
    cond: float = 10.0,
    junk_dims: tuple[int, int] | None = None,
    structure: Structure | None = None,
    structure_: Structure | None = None,
) -> EquivalentSample:
    """Draw a model with exactly the same next-token distribution as ``model``.

    Parameters
    ----------
    model : NextTokenPredictor
    dim : int, optional
        Width of the new model, ``>= k`` (``>= k + 2`` for adversarial junk). Default: the
        model's own ``d`` (or ``k + 2`` if larger, so that junk has room).
    seed : int or Generator, optional
    junk : {"random", "zero", "shuffle", "adversarial"} or (u, w)
        See the module docstring.
    scale : float, optional
        Junk scale: for "random" a multiplier of the matched scale (default 1); for
        "adversarial" a multiplier of the identified part's RMS (default 10).
    cond : float
        Condition number of the random ``T`` and ``A`` (default 10).
    junk_dims : (d_u, d_w), optional
        Sizes of the junk blocks (default: split ``dim - k`` evenly, ``d_w`` taking the odd
        one). Explicit ``(u, w)`` junk sets them from the arrays.
    structure : Structure, optional
        Reuse a precomputed (centred) structure of ``model`` (``structure_`` is the old
        spelling, still accepted).
    """
    model = as_predictor(model)
    if structure is None:
        structure = structure_
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    st = structure if structure is not None else _structure(model)
    k, n, V = st.k, model.n, model.V
    explicit = not isinstance(junk, str)
    if not explicit and junk not in JUNK_MODES:
        raise AllOrNoneError(f"junk must be one of {JUNK_MODES} or a (u, w) pair, got {junk!r}")
    if cond < 1:
        raise AllOrNoneError(f"cond must be >= 1, got {cond}")
    if explicit:
        u, w = _explicit_junk(junk, n, V)
        sizes: tuple[int, int] | None = (u.shape[1], w.shape[1])
    elif junk_dims is not None:
        sizes = (int(junk_dims[0]), int(junk_dims[1]))
        if min(sizes) < 0:
            raise AllOrNoneError(f"junk_dims must be non-negative, got {junk_dims}")
    else:
        sizes = None
    if dim is None:
        dim = max(model.d, k + 2 if sizes is None else k + sum(sizes))
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise AllOrNoneTypeError(f"dim must be an integer width, got {dim!r}")
    dim = int(dim)
    if dim < k:
        raise AllOrNoneError(
            f"dim={dim} is below the effective complexity k={k}: no model narrower than k "
            "produces this distribution"
        )
    _check_sample_memory(dim, n, V)
    d_u, d_w = sizes if sizes is not None else ((dim - k) // 2, dim - k - (dim - k) // 2)
    if k + d_u + d_w > dim:
        raise AllOrNoneError(f"k + d_u + d_w = {k}+{d_u}+{d_w} exceeds dim={dim}")
    if junk == "adversarial" and (d_u < 1 or d_w < 1):
        raise AllOrNoneError(
            f"adversarial junk needs room on both sides: dim >= k + 2 = {k + 2}, got {dim}"
        )

    e_f, e_g = st.e_f, st.e_g
    if not explicit:
        u, w = _make_junk(str(junk), st, d_u, d_w, scale, rng)

    A = random_invertible(k, cond, rng)
    T = random_invertible(dim, cond, rng)
    T_inv_T = np.linalg.inv(T).T
    d_zero = dim - k - d_u - d_w
    Zf = np.hstack([e_f @ A.T, u, np.zeros((n, d_w + d_zero))])
    Zg = np.hstack([np.linalg.solve(A.T, e_g.T).T, np.zeros((V, d_u)), w, np.zeros((V, d_zero))])
    c = rng.standard_normal(dim) * float(np.sqrt(np.mean(e_g**2)) if e_g.size else 1.0)
    F_new = Zf @ T.T
    G_new = Zg @ T_inv_T.T + c
    new = NextTokenPredictor(F_new, G_new, contexts=model.contexts, tokens=model.tokens)
    # The sample is an exact float64 construction from the effective model: its own rounding
    # is float64's (new.eps), whatever precision the original came in.
    U = st.E
    return EquivalentSample(
        model=new,
        T=T,
        A=A,
        c=c,
        u=u,
        w=w,
        blocks={"k": k, "d_u": d_u, "d_w": d_w, "d_zero": d_zero},
        f_map=T[:, :k] @ A @ U.T,
        g_map=T_inv_T[:, :k] @ np.linalg.inv(A).T @ U.T,
        junk="explicit" if explicit else str(junk),
    )


def sample_bytes(dim: int, n: int, V: int) -> int:
    """Peak memory (bytes, float64) of one sample of width ``dim`` for ``n`` contexts and
    ``V`` tokens: the ``dim x dim`` transform, its inverse and their QR/solve work arrays
    (about 5 of them), and the new factors with their padded blocks (about 3 of each)."""
    return 8 * (5 * dim * dim + 3 * (n + V) * dim)


def _check_sample_memory(dim: int, n: int, V: int) -> None:
    """Refuse up front a width whose sample cannot fit in memory (numpy would otherwise grow
    for minutes and end in a raw MemoryError)."""
    from ._validation import available_memory, human_bytes

    need, free = sample_bytes(dim, n, V), available_memory()
    if free is None or need <= free:
        return
    # the widest sample that fits: 40 dim^2 + 24 (n + V) dim <= free
    b = 24 * (n + V)
    fits = int((-b + (b * b + 160 * free) ** 0.5) / 80)
    raise AllOrNoneError(
        f"dim={dim}: a sample that wide needs about {human_bytes(need)} of memory (the "
        f"{dim} x {dim} transform T and its inverse, and the new F and G), more than the "
        f"{human_bytes(free)} available; pass a smaller dim (about {fits:,} fits)"
    )


def _explicit_junk(junk, n: int, V: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        u_in, w_in = junk
    except (TypeError, ValueError) as err:
        raise AllOrNoneError(
            "junk must be a mode string or a pair (u, w) of arrays (n x d_u, V x d_w)"
        ) from err
    u, _ = to_numpy(u_in, "junk u")
    w, _ = to_numpy(w_in, "junk w")
    u = u.reshape(n, -1) if u.ndim == 1 else u
    w = w.reshape(V, -1) if w.ndim == 1 else w
    if u.shape[0] != n:
        raise AllOrNoneError(f"junk u has {u.shape[0]} rows, expected one per context (n={n})")
    if w.shape[0] != V:
        raise AllOrNoneError(f"junk w has {w.shape[0]} rows, expected one per token (V={V})")
    return u, w


def _rms(X: np.ndarray) -> float:
    """Root mean square, computed on ``X / max|X|`` so that it neither under- nor overflows
    for factors of any scale (1e-200 .. 1e200)."""
    top = float(np.max(np.abs(X))) if X.size else 0.0
    if top == 0 or not np.isfinite(top):
        return top
    return top * float(np.sqrt(np.mean((X / top) ** 2)))


def _make_junk(mode: str, st: Structure, d_u: int, d_w: int, scale, rng):
    n, V = st.model.n, st.model.V
    if mode == "zero":
        return np.zeros((n, d_u)), np.zeros((V, d_w))
    own_u = st.model.F @ st.J_f  # (n, dim J_f): the model's own f-junk coordinates
    own_w = st.model.G0_matmul(st.J_g, st.pivot) if st.dim_J_g else np.zeros((V, 0))
    if mode == "shuffle":
        return _fit_cols(own_u[rng.permutation(n)], d_u), _fit_cols(own_w[rng.permutation(V)], d_w)
    if mode == "random":
        su = (_rms(own_u) or _rms(st.e_f) or 1.0) * (1.0 if scale is None else scale)
        sw = (_rms(own_w) or _rms(st.e_g) or 1.0) * (1.0 if scale is None else scale)
        return su * rng.standard_normal((n, d_u)), sw * rng.standard_normal((V, d_w))
    # adversarial: large, and decorrelated from the identified coordinates
    mult = 10.0 if scale is None else scale
    u = _orthogonal_to(rng.standard_normal((n, d_u)), st.e_f)
    w = _orthogonal_to(rng.standard_normal((V, d_w)), st.e_g)
    u *= mult * (_rms(st.e_f) or 1.0) / (_rms(u) or 1.0)
    w *= mult * (_rms(st.e_g) or 1.0) / (_rms(w) or 1.0)
    return u, w


def _orthogonal_to(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Remove from the columns of X their projection on the column space of Y."""
    if Y.size == 0:
        return X
    Q, _ = np.linalg.qr(Y)
    return X - Q @ (Q.T @ X)


def _fit_cols(X: np.ndarray, m: int) -> np.ndarray:
    if X.shape[1] >= m:
        return X[:, :m].copy()
    return np.hstack([X, np.zeros((X.shape[0], m - X.shape[1]))])
