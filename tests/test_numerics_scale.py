"""Equivalence, KL and the sampler are stable for factors of any scale (1e-200 .. 1e30):
the verdict and the map are scale-free, and the KL is finite and equals a dense float64
computation (log-sum-exp per context)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

import allornone as aon

SCALES = [1e-200, 1e-100, 1e-8, 1.0, 1e8, 1e30]


def _pair(scale: float, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 8))
    G = rng.standard_normal((70, 8))
    a = aon.NextTokenPredictor(F * scale, G)
    b = aon.NextTokenPredictor(F * scale, G + noise * rng.standard_normal(G.shape))
    return a, b


def _dense_kl(a: aon.NextTokenPredictor, b: aon.NextTokenPredictor) -> float:
    xa, xb = a.F @ a.G.T, b.F @ b.G.T
    la, lb = log_softmax(xa, axis=1), log_softmax(xb, axis=1)
    pa = np.exp(la)
    diff = xa - xb
    if np.max(np.abs(diff)) < 1e-4:  # tiny logits: the dense sum is all cancellation, so use
        # KL = Var_pa(diff) / 2 + O(diff^3), exact to rounding at this size
        m1 = np.sum(pa * diff, axis=1)
        return float(np.mean(0.5 * (np.sum(pa * diff**2, axis=1) - m1**2)))
    return float(np.mean(np.sum(pa * (la - lb), axis=1)))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("junk", ["zero", "random", "shuffle", "adversarial"])
def test_samples_of_any_scale_are_equivalent(scale, junk):
    a, _ = _pair(scale)
    s = aon.sample_equivalent(a, dim=12, seed=1, junk=junk)
    eq = aon.equivalence(a, s)
    assert eq.equivalent, eq.reasons
    assert eq.k_a == eq.k_b == 3
    assert np.isfinite(eq.mean_kl) and eq.mean_kl < 1e-12
    assert np.isfinite(eq.cond_A)


@pytest.mark.parametrize("scale", SCALES)
def test_kl_of_different_models_is_finite_and_exact(scale):
    a, b = _pair(scale, noise=0.3, seed=2)
    eq = aon.equivalence(a, b, max_rows=None)
    assert not eq.equivalent
    ref = _dense_kl(a, b)
    assert np.isfinite(eq.mean_kl)
    # absolute floor: rounding of the first-order terms, eps x the largest log-odds gap
    assert eq.mean_kl == pytest.approx(ref, rel=1e-6, abs=1e-15 * eq.max_logodds_gap)


def test_huge_gaps_use_the_log_sum_exp_fallback():
    """Gaps beyond ~700 nats overflow exp(-diff); the fallback still matches the dense KL."""
    a, b = _pair(1e3, noise=0.5, seed=3)
    eq = aon.equivalence(a, b, max_rows=None)
    assert eq.max_logodds_gap > 800
    assert eq.mean_kl == pytest.approx(_dense_kl(a, b), rel=1e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_rank_cut_sits_at_the_rounding_floor(dtype):
    """Rank-3 data whose third singular value is 5% of the first: half-precision rounding
    (noise near 1e-3 sigma_max) cannot hide it, so k = 3 (the worst-case floor cut at
    0.56 sigma_max and reported k = 2)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((500, 3)))[0]
    W = np.linalg.qr(rng.standard_normal((32, 3)))[0]
    F = 30 * U @ np.diag([1.0, 0.3, 0.05]) @ W.T * np.sqrt(500)
    G = rng.standard_normal((800, 32))
    t = getattr(torch, dtype)
    st = aon.structure(aon.NextTokenPredictor(torch.tensor(F).to(t), torch.tensor(G).to(t)))
    assert st.k == 3, st.decision
    s = np.asarray(st.singular_values)
    assert s[3] / s[0] < st.tol < s[2] / s[0]  # the cut lies between noise and signal
