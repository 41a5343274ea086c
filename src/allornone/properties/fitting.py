"""Fitting machinery shared by the properties (numpy/scipy only): least squares with a ridge
chosen by generalised cross-validation, the KL probe, L2 logistic regression, R^2, accuracy
and the percentile bootstrap. Nothing here knows a property; the property modules call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

from .._parallel import single_blas_thread

__all__ = [
    "N_BOOTSTRAP",
    "accuracy",
    "affine_lstsq",
    "bootstrap_ci",
    "fit_logistic",
    "gcv_ridge",
    "kl_fit",
    "predict_classes",
    "r2",
]

#: Bootstrap resamples of the held-out subjects for the faithfulness intervals.
N_BOOTSTRAP = 2000


def bootstrap_ci(hits: np.ndarray, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``hits`` (0/1 per held-out subject).

    ``(nan, nan)`` without subjects. E.g. 7 hits of 10 gives about (0.4, 1.0).
    """
    hits = np.asarray(hits, dtype=np.float64)
    if hits.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = hits[rng.integers(0, hits.size, size=(N_BOOTSTRAP, hits.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def r2(Y: np.ndarray, Yhat: np.ndarray) -> float:
    if Y.shape[0] == 0:
        return float("nan")
    ss_tot = float(((Y - Y.mean(axis=0)) ** 2).sum())
    ss_res = float(((Y - Yhat) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else float("-inf"))


def affine_lstsq(
    X: np.ndarray, Y: np.ndarray, ridge: float | str = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Least squares ``Y ~ X W^T + b``: returns W (p_out x p_in), b.

    ``ridge=0``: min-norm solution; a float: that ridge (times n); ``"gcv"``: the ridge chosen
    by generalised cross-validation on a log grid relative to the spectrum of X, used when
    there are fewer examples than features (a min-norm fit then interpolates the training set
    and says nothing held out). The ridge penalty is rotation invariant, so fits on canonical
    (identified) coordinates stay identified.
    """
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mx, Y - my
    if ridge == "gcv":
        if len(X) > X.shape[1] + 1:
            ridge = 0.0
        else:
            Wt = gcv_ridge(Xc, Yc)
            return Wt.T, my - mx @ Wt
    assert not isinstance(ridge, str)
    if ridge > 0:
        p = X.shape[1]
        Wt = np.linalg.solve(Xc.T @ Xc + ridge * len(X) * np.eye(p), Xc.T @ Yc)
    else:
        Wt = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
    return Wt.T, my - mx @ Wt


def gcv_ridge(Xc: np.ndarray, Yc: np.ndarray) -> np.ndarray:
    """Ridge coefficients (p x q) with the penalty minimising the GCV score."""
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    s = s[s > s[0] * 1e-12] if s.size and s[0] > 0 else s[:0]
    if s.size == 0:  # constant features (e.g. every subject the same token): intercept only
        return np.zeros((Xc.shape[1], Yc.shape[1]))
    U, Vt = U[:, : s.size], Vt[: s.size]
    UtY = U.T @ Yc
    n = len(Xc)
    base = float(np.sum(Yc**2) - np.sum(UtY**2))
    best, best_lam = np.inf, 0.0
    for lam in float(np.mean(s**2)) * np.logspace(-6, 3, 28):
        f = s**2 / (s**2 + lam)
        resid = base + float(np.sum(((1 - f)[:, None] * UtY) ** 2))
        dof = f.sum() + 1.0  # + the intercept removed by centring
        score = resid / max(n * (1 - dof / n) ** 2, 1e-300)
        if score < best:
            best, best_lam = score, lam
    return Vt.T @ ((s / (s**2 + best_lam))[:, None] * UtY)


def kl_fit(
    X: np.ndarray, P: np.ndarray, H: np.ndarray, ridge: float
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """KL probe: ``min mean_s KL(P_s || softmax(H (W x_s + b))) + lam ||W||^2``.

    X (n, p) inputs, P (n, m) target distributions on the answers, H (m, r) readout.
    ``lam = ridge * tr(Xc^T Xc) / (n p)``: the ridge is relative to the mean variance of the
    centred inputs, so the fit does not depend on their scale. Returns W (r, p), b (r,) and
    the fit's ``{"ridge": lam, "iterations": ..., "converged": ...}``.

    Solved by L-BFGS in preconditioned coordinates ``W = L C R^T``, ``b = L c - W mean(X)``,
    with ``R = (Xc^T Xc / n + .)^(-1/2)`` and ``L = (H^T S H + .)^(-1/2)`` (S: the mean
    softmax covariance of the warm start): an invertible change of variables, so the same
    (unique, strictly convex in W) optimum, reached in far fewer iterations than in the raw
    coordinates, where the fit often stopped at the iteration limit. BLAS runs on one thread
    here: for these small products threads cost more than they give (3x on 2 cores).
    """
    n, p = X.shape
    r = H.shape[1]
    logP = np.log(np.clip(P, 1e-300, None))
    ent = float((P * logP).sum()) / n
    mx = X.mean(axis=0)
    Xc = X - mx
    scale = float((Xc**2).sum()) / (n * p)
    lam = float(ridge) * scale if scale > 0 else float(ridge)
    # warm start: least squares on the target log-odds (centred per row)
    Tc = logP - logP.mean(axis=1, keepdims=True)
    W0, b0 = affine_lstsq(X, Tc @ np.linalg.pinv(H).T, ridge=max(lam, 1e-10 * scale, 1e-300))
    # Kronecker preconditioner of the loss Hessian, (H^T S H) x (Xc^T Xc / n), damped by the
    # ridge (split between the factors) and by 1e-10 of each factor's top eigenvalue
    ex, Vx = np.linalg.eigh(Xc.T @ Xc / n)
    Q0 = np.exp(log_softmax((X @ W0.T + b0) @ H.T, axis=1))
    S = np.diag(Q0.mean(axis=0)) - (Q0.T @ Q0) / n
    eh, Vh = np.linalg.eigh(H.T @ S @ H)
    ex, eh = np.clip(ex, 0.0, None), np.clip(eh, 0.0, None)
    top_x, top_h = max(float(ex[-1]), 1e-300), max(float(eh[-1]), 1e-300)
    split = np.sqrt(top_h / top_x)
    g = np.sqrt(2.0 * lam)
    dx = np.sqrt(ex + g / split + 1e-10 * top_x)
    dh = np.sqrt(eh + g * split + 1e-10 * top_h)
    R = Vx / dx  # W = L C R^T; R^-T = Vx * dx, L^-1 = (Vh * dh)^T
    L = Vh / dh
    Xt, Ht = Xc @ R, H @ L
    C0 = ((Vh * dh).T @ W0) @ (Vx * dx)
    c0 = (Vh * dh).T @ (b0 + W0 @ mx)
    # L^T L and R^T R are diagonal (Vh, Vx orthogonal), so ||W||^2 = sum C_ij^2 w_ij
    wC = 1.0 / np.outer(dh**2, dx**2)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        C = theta[: r * p].reshape(r, p)
        c = theta[r * p :]
        lq = log_softmax((Xt @ C.T + c) @ Ht.T, axis=1)
        val = ent - float((P * lq).sum()) / n + lam * float((wC * C**2).sum())
        gO = ((np.exp(lq) - P) / n) @ Ht  # (n, r)
        gC = gO.T @ Xt + 2.0 * lam * (wC * C)
        return val, np.concatenate([gC.ravel(), gO.sum(axis=0)])

    with single_blas_thread():
        res = minimize(
            loss,
            np.concatenate([C0.ravel(), c0]),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 1000, "gtol": 1e-10},
        )
    C, c = res.x[: r * p].reshape(r, p), res.x[r * p :]
    W = L @ C @ R.T
    info = {"ridge": lam, "iterations": int(res.nit), "converged": bool(res.success)}
    return W, L @ c - W @ mx, info


def fit_logistic(
    X: np.ndarray, y: np.ndarray, n_classes: int, *, ridge: float = 1e-3, max_iter: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised logistic regression (binary or multinomial), Newton-CG to convergence.

    Minimises ``mean_i CE(softmax(W x_i + b), y_i) + ridge * ||W||^2`` (strictly convex), with
    exact gradients and Hessian-vector products, so the optimum is reached to near machine
    precision in a few tens of iterations (fits on identical features agree to rounding).

    Parameters
    ----------
    X : (n, p) features;  y : (n,) ints in ``range(n_classes)``.

    Returns
    -------
    W : (1, p) for two classes (score = logit of class 1) or (c, p);  b : (1,) or (c,).
    """
    n, p = X.shape
    c = 1 if n_classes == 2 else n_classes
    Y = np.zeros((n, max(c, 2)))
    Y[np.arange(n), y] = 1.0

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return theta[: c * p].reshape(c, p), theta[c * p :]

    def full(Z: np.ndarray) -> np.ndarray:
        return np.hstack([np.zeros((n, 1)), Z]) if c == 1 else Z

    def probs(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        W, b = unpack(theta)
        lp = log_softmax(full(X @ W.T + b), axis=1)
        return lp, np.exp(lp)

    def fun(theta: np.ndarray) -> float:
        W, _ = unpack(theta)
        lp, _ = probs(theta)
        return -float((Y * lp).sum()) / n + ridge * float((W**2).sum())

    def grad(theta: np.ndarray) -> np.ndarray:
        W, _ = unpack(theta)
        _, P = probs(theta)
        Gz = (P - Y) / n
        Gz = Gz[:, 1:] if c == 1 else Gz
        return np.concatenate([(Gz.T @ X + 2 * ridge * W).ravel(), Gz.sum(axis=0)])

    def hessp(theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        _, P = probs(theta)
        dW, db = unpack(v)
        dZ = full(X @ dW.T + db)
        Hz = (P * dZ - P * (P * dZ).sum(axis=1, keepdims=True)) / n
        Hz = Hz[:, 1:] if c == 1 else Hz
        return np.concatenate([(Hz.T @ X + 2 * ridge * dW).ravel(), Hz.sum(axis=0)])

    res = minimize(
        fun,
        np.zeros(c * p + c),
        jac=grad,
        hessp=hessp,
        method="Newton-CG",
        options={"maxiter": max_iter, "xtol": 1e-12},
    )
    return unpack(res.x)


def predict_classes(scores: np.ndarray) -> np.ndarray:
    """Class index from probe scores: (n, 1) binary logits or (n, c) multiclass scores."""
    if scores.shape[1] == 1:
        return (scores[:, 0] > 0).astype(int)
    return scores.argmax(axis=1)


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(pred == truth)) if len(truth) else float("nan")
