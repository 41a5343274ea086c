"""Random predictors with planted structure, shared by the theorem tests (float64)."""

from __future__ import annotations

import numpy as np

import allornone as aon


def planted(
    rng: np.random.Generator,
    *,
    n: int = 50,
    V: int = 70,
    d: int = 12,
    k: int = 4,
    jf: int = 2,
    jg: int = 3,
    offset: float = 2.0,
) -> tuple[aon.NextTokenPredictor, dict]:
    """A predictor with ``rank L = k``, ``dim J_f = jf`` and ``dim J_g = jg`` (k + jf + jg <= d).

    Built in a random orthonormal frame ``Q`` of R^d: f lives in the first ``k + jf`` axes,
    centred g in the first ``k`` and the next ``jg`` axes, so that the f-junk is orthogonal to
    N and the g-junk orthogonal to M. A constant ``offset`` is added to every g (it must not
    matter). Returns the model and the frame blocks.
    """
    assert k + jf + jg <= d
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Qe, Qf, Qg = Q[:, :k], Q[:, k : k + jf], Q[:, k + jf : k + jf + jg]
    F = rng.standard_normal((n, k)) @ Qe.T + rng.standard_normal((n, jf)) @ Qf.T
    G = rng.standard_normal((V, k)) @ Qe.T + rng.standard_normal((V, jg)) @ Qg.T
    G += offset * rng.standard_normal(d)
    frame = {"E": Qe, "J_f": Qf, "J_g": Qg, "rest": Q[:, k + jf + jg :]}
    return aon.NextTokenPredictor(F, G), frame


def same_span(A: np.ndarray, B: np.ndarray, tol: float = 1e-9) -> bool:
    """Do the orthonormal columns of A and B span the same subspace?"""
    if A.shape[1] != B.shape[1]:
        return False
    if A.shape[1] == 0:
        return True
    return bool(np.abs(A @ A.T - B @ B.T).max() < tol)


def rel(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-300))
