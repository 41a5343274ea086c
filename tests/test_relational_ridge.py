"""Relation fits with fewer subjects than dimensions use a GCV ridge, not an interpolant."""

from __future__ import annotations

import numpy as np

from allornone.properties.fitting import affine_lstsq as _affine_lstsq


def test_gcv_ridge_does_not_interpolate_noise():
    """No relation at all: min-norm fits the training noise and is worse than predicting the
    mean on held-out subjects (negative R^2, the symptom seen on real relations); GCV shrinks
    the map to (almost) nothing."""
    rng = np.random.default_rng(0)
    n, p, q = 40, 200, 5
    X, Y = rng.standard_normal((n, p)), rng.standard_normal((n, q))
    Xt, Yt = rng.standard_normal((500, p)), rng.standard_normal((500, q))
    r2 = lambda Yh: 1 - np.sum((Yt - Yh) ** 2) / np.sum((Yt - Yt.mean(0)) ** 2)  # noqa: E731
    Wm, bm = _affine_lstsq(X, Y)
    Wg, bg = _affine_lstsq(X, Y, ridge="gcv")
    assert np.allclose(X @ Wm.T + bm, Y, atol=1e-8)  # min-norm interpolates the training set
    assert r2(Xt @ Wm.T + bm) < -0.1
    assert r2(Xt @ Wg.T + bg) > -0.05


def test_gcv_ridge_keeps_a_real_map():
    rng = np.random.default_rng(3)
    n, p, q = 40, 200, 5
    W = np.zeros((q, p))
    W[:, :10] = rng.standard_normal((q, 10))
    X = rng.standard_normal((n, p)) * np.logspace(0, -2, p)
    Y = X @ W.T + 0.5 * rng.standard_normal((n, q))
    Xt = rng.standard_normal((500, p)) * np.logspace(0, -2, p)
    Yt = Xt @ W.T
    r2 = lambda Yh: 1 - np.sum((Yt - Yh) ** 2) / np.sum((Yt - Yt.mean(0)) ** 2)  # noqa: E731
    Wg, bg = _affine_lstsq(X, Y, ridge="gcv")
    assert r2(Xt @ Wg.T + bg) > 0.8


def test_gcv_ridge_is_plain_least_squares_when_well_determined():
    rng = np.random.default_rng(1)
    X, W = rng.standard_normal((100, 5)), rng.standard_normal((3, 5))
    Y = X @ W.T + 2.0
    Wg, bg = _affine_lstsq(X, Y, ridge="gcv")
    assert np.allclose(Wg, W) and np.allclose(bg, 2.0)


def test_gcv_ridge_is_rotation_invariant():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((20, 50)), rng.standard_normal((20, 3))
    Q, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    W1, b1 = _affine_lstsq(X, Y, ridge="gcv")
    W2, b2 = _affine_lstsq(X @ Q, Y, ridge="gcv")
    assert np.allclose(X @ W1.T + b1, X @ Q @ W2.T + b2, atol=1e-9)
