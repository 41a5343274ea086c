"""Effective complexity and the subspaces M, N, E, E', J_f, J_g (THEORY.md section 3).

All quantities come from the factors ``F`` (n x d) and ``G0`` (V x d) through small factors
``R_F``, ``R_G`` with ``R^T R = F^T F`` (streamed tall-skinny QR for float64 inputs, the
streamed Gram matrix for float32/bfloat16 inputs; ``O((n + V) d^2)``):
``L = F G0^T = Q_F (R_F R_G^T) Q_G^T``, so the singular values of ``L`` are those of the
small matrix ``K = R_F R_G^T``. The n x V matrix ``L`` is never formed.

Numerical rank: singular values of ``L`` above ``tol * sigma_max`` count. The default cut is
the rounding floor of the factors: if every entry of ``F`` and ``G0`` carries a relative error
``eps`` (2.2e-16 for float64 inputs, 1.2e-7 for float32, 7.8e-3 for bfloat16), a singular value
of ``L`` moves by at most ``eps (||F||_F ||G0||_2 + ||F||_2 ||G0||_F)``; ten times that is the
cut (``NOISE_FACTOR``), reported back as the relative ``tol``. ``dim M`` and ``dim N`` use
``10 eps ||F||_F`` and ``10 eps ||G0||_F``, raised to ``cut / ||G0||_2`` and ``cut / ||F||_2``
(a direction weaker than that cannot move ``L`` past its own cut). A user ``tol`` is
relative to the largest singular value of each matrix (``L``, ``F``, ``G0``).
Trained models have no sharp rank: read :attr:`Structure.energy_rank` and the spectrum, and
the gap the decision was taken on (:attr:`Structure.gap`).

The cut above bounds the rounding of the factors as given, so it depends on the
parametrisation (rescaling ``f`` and ``g`` by ``D`` and ``D^-1`` moves it), and whatever lies
below it is that parametrisation's rounding noise. The gap is therefore measured against the
**identified noise floor** (:attr:`Structure.noise_floor`): the same bound for the balanced
form of the distribution, ``F = U_k S^1/2``, ``G0 = W_k S^1/2`` (``||F||_F = sqrt(sum sigma)``,
``||F||_2 = sqrt(sigma_max)``), which is a function of the kept spectrum alone and the smallest
such bound over every factorisation (``||F||_F ||G0||_F >= sum sigma`` and
``||F||_2 ||G0||_2 >= sigma_max``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._tables import TableMixin
from ._validation import AllOrNoneError, default_rank_tol
from .linalg import (
    energy_rank,
    factor_svd,
    norm2,
    principal_cosines,
    r_factor,
    row_basis,
)
from .predictor import NextTokenPredictor, Pivot, as_predictor

#: Inputs whose source precision is coarser than this use the (faster) Gram route for the
#: factors R_F, R_G; float64 inputs use tall-skinny QR.
GRAM_EPS = 1e-10

#: Safety factor on the rounding floor that decides the default numerical ranks.
NOISE_FACTOR = 10.0
#: Source dtypes coarser than this (bfloat16, float16) get the random-rounding floor.
HALF_EPS = 1e-4

#: A spectrum gap ``sigma_k / sigma_{k+1}`` below this makes ``k`` "not sharp".
SHARP_GAP = 1e3


@dataclass(eq=False)
class Structure(TableMixin):
    """Effective complexity and subspaces of one predictor (all bases orthonormal, d x dim).

    Attributes
    ----------
    k : int
        Effective complexity ``rank L`` (the smallest width of any model with this
        distribution).
    singular_values : ndarray (min(n, V, d),)
        Spectrum of the log-odds matrix ``L``, descending.
    tol, threshold : float
        Relative tolerance and the absolute cut ``tol * sigma_max`` that decided ``k``.
    gap : float
        ``sigma_k / max(sigma_{k+1}, noise_floor)`` (inf when nothing was cut and the floor is
        0); ``sharp`` is ``gap >= 1e3``. A ``sigma_{k+1}`` below the identified floor is
        rounding noise of the given factors and would make the gap depend on them.
    noise_floor : float
        The identified rounding floor (module docstring): ``NOISE_FACTOR eps`` times the
        rounding bound of the balanced form of the kept spectrum.
    energy_rank : int
        Smallest ``r`` keeping ``energy`` of ``sum sigma^2`` (useful for trained models).
    M, N : ndarray
        Bases of ``span f(x)`` and ``span g0(y)``.
    E, E_prime : ndarray (d, k)
        Bases of ``E = P_N(M)`` and ``E' = P_M(N)``, in the order of the spectrum of ``L``:
        ``G0 E[:, :j]`` spans the top ``j`` right singular vectors of ``L`` and
        ``F E'[:, :j]`` the top ``j`` left ones. The leading context coordinates are
        therefore :meth:`leading_f` (``F E'[:, :j]``), not ``e_f[:, :j]`` (``F E[:, :j]``,
        ordered by the right singular vectors).
    J_f, J_g : ndarray
        Junk: ``M`` minus ``E'`` (parts of ``f`` no logit reads) and ``N`` minus ``E``
        (parts of ``g0`` no context reads).
    cosines : ndarray
        Cosines of the principal angles between ``M`` and ``N`` (computed on first use).
    f_singular_values, g_singular_values : ndarray
        Singular values of ``F`` and ``G0``.
    """

    model: NextTokenPredictor = field(repr=False)
    pivot: Pivot
    k: int
    singular_values: np.ndarray = field(repr=False)
    tol: float
    threshold: float
    gap: float
    energy: float
    noise_floor: float
    energy_rank: int
    M: np.ndarray = field(repr=False)
    N: np.ndarray = field(repr=False)
    E: np.ndarray = field(repr=False)
    E_prime: np.ndarray = field(repr=False)
    J_f: np.ndarray = field(repr=False)
    J_g: np.ndarray = field(repr=False)
    f_singular_values: np.ndarray = field(repr=False)
    g_singular_values: np.ndarray = field(repr=False)
    _f_right: np.ndarray = field(repr=False)
    _g_right: np.ndarray = field(repr=False)
    _cosines: np.ndarray | None = field(default=None, repr=False)
    _e_f: np.ndarray | None = field(default=None, repr=False)
    _e_g: np.ndarray | None = field(default=None, repr=False)

    # dims ------------------------------------------------------------------
    @property
    def d(self) -> int:
        return self.model.d

    @property
    def dim_M(self) -> int:
        return int(self.M.shape[1])

    @property
    def dim_N(self) -> int:
        return int(self.N.shape[1])

    @property
    def dim_J_f(self) -> int:
        return int(self.J_f.shape[1])

    @property
    def dim_J_g(self) -> int:
        return int(self.J_g.shape[1])

    @property
    def cosines(self) -> np.ndarray:
        if self._cosines is None:
            self._cosines = principal_cosines(self.M, self.N)
        return self._cosines

    @property
    def R_F(self) -> np.ndarray:
        """An R factor of ``F`` (r x d): ``R_F^T R_F = F^T F`` (``diag(s) Vt`` of ``F``)."""
        return self.f_singular_values[:, None] * self._f_right

    @property
    def R_G(self) -> np.ndarray:
        """An R factor of ``G0`` (r x d) for this structure's pivot: ``R_G^T R_G = G0^T G0``."""
        return self.g_singular_values[:, None] * self._g_right

    @property
    def sharp(self) -> bool:
        return bool(self.gap >= SHARP_GAP)

    @property
    def U(self) -> np.ndarray:
        """Orthonormal basis of ``E`` (d x k) used for the effective model."""
        return self.E

    @property
    def decision(self) -> str:
        """One line saying where the spectrum was cut and how clear the cut was."""
        s = self.singular_values
        smax = s[0] if s.size else 0.0
        kept = f"sigma_{self.k}/sigma_max = {s[self.k - 1] / smax:.3g}" if self.k else "nothing"
        nxt = (
            f"sigma_{self.k + 1}/sigma_max = {s[self.k] / smax:.3g} dropped"
            if self.k < s.size
            else "nothing dropped"
        )
        verdict = "sharp" if self.sharp else "NOT sharp: read energy_rank and the spectrum"
        return (
            f"k={self.k}: {kept} kept, {nxt} (threshold {self.tol:.3g} x sigma_max); "
            f"gap {self.gap:.3g} ({verdict})"
        )

    # effective model -------------------------------------------------------
    @property
    def e_f(self) -> np.ndarray:
        """Effective context representations ``U^T f(x)``, shape (n, k)."""
        if self._e_f is None:
            self._e_f = self.model.F_matmul(self.E)
        return self._e_f

    @property
    def e_g(self) -> np.ndarray:
        """Effective unembeddings ``U^T g0(y)``, shape (V, k) (centred or pivoted g0)."""
        if self._e_g is None:
            self._e_g = self.model.G0_matmul(self.E, self.pivot)
        return self._e_g

    def leading_f(self, r: int) -> np.ndarray:
        """``F E'[:, :r]``, shape (n, r): coordinates of ``f(x)`` whose span is that of the top
        ``r`` left singular vectors of ``L`` (a function of the distribution), so two
        equivalent models give them up to an invertible ``r x r`` map. ``e_f[:, :r]`` does
        not have that property (``E`` is ordered by the right singular vectors)."""
        if not isinstance(r, int | np.integer) or isinstance(r, bool) or not 1 <= r <= self.k:
            raise AllOrNoneError(f"r must be an integer in [1, k={self.k}], got {r!r}")
        return self.model.F_matmul(self.E_prime[:, : int(r)])

    def effective(self) -> tuple[np.ndarray, np.ndarray]:
        """The effective model ``(e_f, e_g)`` with ``e_f e_g^T = L``."""
        return self.e_f, self.e_g

    def summary(self) -> dict:
        """Plain numbers for reports and JSON."""
        return {
            "n": self.model.n,
            "V": self.model.V,
            "d": self.d,
            "k": self.k,
            "energy_rank": self.energy_rank,
            "energy": self.energy,
            "dim_M": self.dim_M,
            "dim_N": self.dim_N,
            "dim_E": self.k,
            "dim_J_f": self.dim_J_f,
            "dim_J_g": self.dim_J_g,
            "tol": self.tol,
            "gap": self.gap,
            "sharp": self.sharp,
            "pivot": str(self.pivot),
            "decision": self.decision,
        }


def structure(
    model: NextTokenPredictor | Any,
    *,
    tol: float | None = None,
    pivot: Pivot = "center",
    energy: float = 0.99,
) -> Structure:
    """Effective complexity ``k`` and the subspaces of ``model`` (THEORY.md 3).

    Parameters
    ----------
    model : NextTokenPredictor
    tol : float, optional
        Rank tolerance relative to the largest singular value of ``L`` (and of ``F``, ``G0``
        for ``dim M``, ``dim N``); default: the rounding floor in the module docstring.
    pivot : "center" or token
        Centred (default) or pivoted unembeddings; ``k`` and the subspaces do not depend on it.
    energy : float
        Energy fraction for :attr:`Structure.energy_rank` (default 0.99).

    Cost ``O((n + V) d^2)`` time and ``O(d^2)`` extra memory beyond the factors.
    """
    model = as_predictor(model)
    if not 0 < energy <= 1:
        raise AllOrNoneError(f"energy must be in (0, 1], got {energy}")
    shift = model.pivot_vector(pivot)
    gram = model.eps > GRAM_EPS  # float32/bfloat16 sources: Gram route (see r_factor)
    # R factors in SVD form, R = diag(s) Vt (R^T R = F^T F, resp. G0^T G0)
    sF, VtF = factor_svd(model.F, gram=gram)
    sG, VtG = factor_svd(model.G, shift=shift, gram=gram)

    _check_log_odds_scale(sF, sG)
    # Spectrum of L from the small core K = R_F R_G^T.
    P, s, Qt = np.linalg.svd((sF[:, None] * VtF) @ (sG[:, None] * VtG).T, full_matrices=False)
    if s.size == 0 or s[0] <= 0 or not np.isfinite(s[0]):
        raise AllOrNoneError(
            "the log-odds matrix is zero (k = 0): every context gives the same log-odds to "
            "every token (a uniform or context-free distribution); there is nothing to analyse"
        )
    if tol is None:
        # Rounding floor: entries of F and G0 carry relative errors ~eps, so
        # ||dF|| <= eps ||F||_F and sigma_i(L) moves by at most
        # eps (||F||_F ||G0|| + ||F|| ||G0||_F); NOISE_FACTOR is a safety margin.
        fro_F, fro_G = norm2(sF), norm2(sG)  # no overflow for factors of 1e160
        c = NOISE_FACTOR * model.eps
        if model.eps > HALF_EPS:
            # bfloat16/float16: the worst case (errors aligned with the spectrum) would cut at
            # a sizeable fraction of sigma_max. Rounding errors are independent across
            # entries, with standard deviation (eps / 2) / sqrt(3) relative (round to nearest),
            # so ||dF||_2 ~ that x rms(F) (sqrt(n) + sqrt(d)) (a random matrix): use that
            # (NOISE_FACTOR still the margin)
            unit = 0.5 / np.sqrt(3.0)
            fro_F *= unit * (1 / np.sqrt(model.d) + 1 / np.sqrt(model.n))
            fro_G *= unit * (1 / np.sqrt(model.d) + 1 / np.sqrt(model.V))
        rtol = c * (fro_F * sG[0] + sF[0] * fro_G) / s[0]
        rtol_F, rtol_G = c * fro_F / sF[0], c * fro_G / sG[0]
        # A direction of G0 with singular value s moves L by at most s ||F||_2: below the
        # L cut it cannot be told from zero, so it is not counted in N (likewise for M).
        # Without this, rounding noise amplified by a transformed model (a sampled T with
        # cond > 10) can enter N and, through E = P_N(M), contaminate E.
        floor = rtol * s[0] / (sF[0] * sG[0])
        rtol_F, rtol_G = max(rtol_F, floor), max(rtol_G, floor)
    else:
        rtol = rtol_F = rtol_G = float(tol)
    k = int((s > rtol * s[0]).sum())
    floor = identified_floor(s, k, model.eps, model.n, model.V)
    nxt = max(float(s[k]), floor) if k < s.size else floor
    gap = float(s[k - 1] / nxt) if nxt > 0 else float("inf")

    # M and N: rank of F and G0 by the same relative cut, never below k (E lies in N, E' in M).
    # E = G0^+ (row space of L) = R_G^+ Q[:, :k] and E' = R_F^+ P[:, :k], with pseudo-inverses
    # on N and M so noise directions below the cut are not amplified; one complete QR of
    # the coordinates in N (resp. M) gives an orthonormal E and its complement J_g (resp. J_f).
    M, E_prime, J_f = _split(sF, VtF, rtol_F, P[:, :k])
    N, E, J_g = _split(sG, VtG, rtol_G, Qt[:k].T)
    return Structure(
        model=model,
        pivot=pivot,
        k=k,
        singular_values=s,
        tol=rtol,
        threshold=float(rtol * s[0]),
        gap=gap,
        energy=energy,
        noise_floor=floor,
        energy_rank=energy_rank(s, energy),
        M=M,
        N=N,
        E=E,
        E_prime=E_prime,
        J_f=J_f,
        J_g=J_g,
        f_singular_values=sF,
        g_singular_values=sG,
        _f_right=VtF,
        _g_right=VtG,
    )


#: Largest singular value of ``L = F G0^T`` that float64 holds with room for its spectrum:
#: beyond, ``L`` (or ``F G^T``) overflows; below the lower end its spectrum underflows.
LOG_ODDS_RANGE = (1e-290, 1e290)


def _check_log_odds_scale(sF: np.ndarray, sG: np.ndarray) -> None:
    """Refuse factors whose log-odds ``F G0^T`` cannot be represented in float64.

    ``sigma_max(L) <= sigma_max(F) sigma_max(G0)``: when that product overflows (or the
    spectrum would sink below the smallest normal numbers) the rank cut is meaningless, and
    ``k`` came out as 0 with only a numpy overflow warning. The structure does not depend on
    the scale of ``F`` or ``G`` separately, so the fix is to divide one of them.
    """
    if not (sF.size and sG.size and sF[0] > 0 and sG[0] > 0):
        return
    top = float(sF[0]) * float(sG[0])
    if LOG_ODDS_RANGE[0] <= top <= LOG_ODDS_RANGE[1]:
        return
    side = "overflow" if not top < LOG_ODDS_RANGE[1] else "underflow"
    raise AllOrNoneError(
        f"the log-odds F G^T would {side} float64: the largest singular values of F and G "
        f"(centred) are {float(sF[0]):.1e} and {float(sG[0]):.1e}, product {top:.1e}, outside "
        f"[{LOG_ODDS_RANGE[0]:.0e}, {LOG_ODDS_RANGE[1]:.0e}]; divide F or G by a constant "
        "first (k and the subspaces do not depend on their scale)"
    )


def identified_floor(s: np.ndarray, k: int, eps: float, n: int, V: int) -> float:
    """``NOISE_FACTOR eps (||F||_F ||G0||_2 + ||F||_2 ||G0||_F)`` for the balanced form
    ``F = U_k S^1/2``, ``G0 = W_k S^1/2`` of the top ``k`` singular values ``s`` (with the
    random-rounding scaling of :func:`structure` for bfloat16/float16 sources): a function of
    the distribution alone, and at most the floor of any factorisation of it."""
    if k < 1 or s.size == 0:
        return 0.0
    fro, two = float(np.sqrt(np.sum(s[:k]))), float(np.sqrt(s[0]))
    fro_F = fro_G = fro
    if eps > HALF_EPS:
        unit = 0.5 / np.sqrt(3.0)
        fro_F = fro * unit * (1 / np.sqrt(k) + 1 / np.sqrt(n))
        fro_G = fro * unit * (1 / np.sqrt(k) + 1 / np.sqrt(V))
    return float(NOISE_FACTOR * eps * (fro_F * two + two * fro_G))


def leading_rank(a: Structure, b: Structure, n: int) -> int:
    """How many leading context coordinates (:meth:`Structure.leading_f`) a map between two
    models uses: ``min`` of the energy ranks, at most a third of the training contexts (70 %
    of ``n``, so a least-squares map cannot interpolate) and at most both ``k``."""
    return max(1, min(a.energy_rank, b.energy_rank, int(0.7 * n) // 3, a.k, b.k))


def _split(s: np.ndarray, Vt: np.ndarray, rtol: float, X: np.ndarray):
    """For ``R = diag(s) Vt``: the row-space basis ``B`` (rank by ``rtol``, at least
    ``k = X.shape[1]``), an orthonormal basis of ``span(R^+ X)`` inside it and the complement.

    Returns ``(B, E, J)``, each ``d x dim`` with orthonormal columns.
    """
    k = X.shape[1]
    r = int((s > rtol * s[0]).sum()) if s.size and s[0] > 0 else 0
    r = min(max(r, k), s.size)
    B = np.ascontiguousarray(Vt[:r].T)
    # coordinates of R^+ X in B; Gram-Schmidt keeps the column order of X (the spectrum of
    # L), so the leading columns of E span the leading singular directions
    Q = np.linalg.qr(X[:r] / s[:r, None], mode="complete" if r > k else "reduced")[0]
    return B, B @ Q[:, :k], B @ Q[:, k:]


def subspace_of(X: np.ndarray, *, tol: float | None = None, eps: float = 2.2e-16) -> np.ndarray:
    """Orthonormal basis (d x r) of the row space of ``X`` (m x d), e.g. ``M_S`` of a subset.

    Default relative tolerance ``max(m, d) * eps``.
    """
    X = np.asarray(X, dtype=np.float64)
    rtol = tol if tol is not None else default_rank_tol(X.shape, eps)
    return row_basis(r_factor(X), rtol)[0]


def reduced(P: NextTokenPredictor) -> NextTokenPredictor:
    """The same predictor written in an orthonormal basis of span{f(x), g(y)} (width <= n + V).

    Exact: every inner product f^T g, every dimension (M, N, E, junk) and k are unchanged, so
    structure() on a small restricted problem costs O((n + V)^3) instead of O(d^3).
    """
    if P.n + P.V >= P.d:
        return P
    X = np.vstack([P.F, P.G])
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    r = int((s > s[0] * max(X.shape) * 1e-15).sum()) if s.size and s[0] > 0 else 1
    B = Vt[: max(r, 1)].T
    return NextTokenPredictor(P.F @ B, P.G @ B, contexts=P.contexts, tokens=P.tokens, eps=P.eps)
