"""Theorems of THEORY.md section 7 for the math core (items 1-3, construction side of 4-6).

All on random float64 models with planted k < d, non-zero junk on both sides, and sampled
equivalents of other widths.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from planted import planted, rel, same_span

import allornone as aon

SETTINGS = settings(max_examples=30, deadline=None)


@st.composite
def planted_case(draw):
    k = draw(st.integers(1, 5))
    jf = draw(st.integers(0, 3))
    jg = draw(st.integers(0, 3))
    d = k + jf + jg + draw(st.integers(0, 3))
    n = draw(st.integers(k + jf + 3, 40))
    V = draw(st.integers(k + jg + 3, 50))
    seed = draw(st.integers(0, 2**32 - 1))
    return planted(np.random.default_rng(seed), n=n, V=V, d=d, k=k, jf=jf, jg=jg), seed


# ----------------------------------------------------------------------------- structure
@SETTINGS
@given(planted_case())
def test_structure_recovers_planted_subspaces(case):
    (model, frame), _ = case
    s = aon.structure(model)
    k, jf, jg = frame["E"].shape[1], frame["J_f"].shape[1], frame["J_g"].shape[1]
    assert s.k == k and s.sharp
    assert (s.dim_M, s.dim_N, s.dim_J_f, s.dim_J_g) == (k + jf, k + jg, jf, jg)
    assert same_span(s.E, frame["E"]) and same_span(s.E_prime, frame["E"])
    assert same_span(s.J_f, frame["J_f"]) and same_span(s.J_g, frame["J_g"])
    # the spectrum from the factors equals the SVD of the materialised L (small here)
    sv = np.linalg.svd(model.log_odds(), compute_uv=False)
    np.testing.assert_allclose(s.singular_values[:k], sv[:k], rtol=1e-10)
    # effective model reproduces L, and the identities of THEORY.md 3
    L = model.log_odds()
    assert rel(s.e_f @ s.e_g.T, L) < 1e-10
    PN, PE = s.N @ s.N.T, s.E @ s.E.T
    G0 = model.G0()
    assert rel(model.F @ PN @ G0.T, L) < 1e-10
    assert rel((model.F @ PE) @ (G0 @ PE).T, L) < 1e-10


@pytest.mark.parametrize("junk", [0, 2])
def test_effective_bases_follow_the_spectrum_of_L(junk):
    """Leading columns of E (E') map to the leading right (left) singular vectors of L, also
    when E is all of N (no junk: compare's maps use the leading coordinates)."""
    rng = np.random.default_rng(14)
    model, _ = planted(rng, n=40, V=50, d=9, k=5, jf=junk, jg=junk)
    s = aon.structure(model)
    U, _, Vt = np.linalg.svd(model.log_odds(), full_matrices=False)
    for j in range(1, s.k + 1):
        right = np.linalg.qr(model.G0() @ s.E[:, :j])[0]
        left = np.linalg.qr(model.F @ s.E_prime[:, :j])[0]
        assert same_span(right, Vt[:j].T) and same_span(left, U[:, :j])


def test_structure_matches_materialised_when_junk_overlaps():
    """Junk not aligned with axes: f has a component in N that no context... still k = rank L."""
    rng = np.random.default_rng(3)
    F = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 8))
    G = rng.standard_normal((40, 5)) @ rng.standard_normal((5, 8))
    m = aon.NextTokenPredictor(F, G)
    s = aon.structure(m)
    assert s.k == np.linalg.matrix_rank(m.log_odds()) == 3
    assert s.dim_M == 3 and s.dim_N == 5
    assert s.dim_J_f + s.k == s.dim_M and s.dim_J_g + s.k == s.dim_N


@SETTINGS
@given(planted_case(), st.integers(0, 10_000))
def test_pivot_and_centring_do_not_change_k_or_subspaces(case, pivot_seed):
    """THEORY.md 7.3: k and the subspaces are the same for every pivot and for centring."""
    (model, _), _ = case
    pivot = int(np.random.default_rng(pivot_seed).integers(model.V))
    sc = aon.structure(model)
    sp = aon.structure(model, pivot=pivot)
    assert sc.k == sp.k
    for a, b in [(sc.M, sp.M), (sc.N, sp.N), (sc.E, sp.E), (sc.J_f, sp.J_f), (sc.J_g, sp.J_g)]:
        assert same_span(a, b, 1e-8)
    # pivoted log-odds are centred ones shifted per row
    Lc, Lp = model.log_odds(), model.log_odds(pivot=pivot)
    assert rel(Lc - Lc[:, [pivot]], Lp) < 1e-10


# ----------------------------------------------------------------------------- theorem 1
@SETTINGS
@given(
    planted_case(),
    st.sampled_from(["random", "zero", "shuffle", "adversarial"]),
    st.integers(0, 6),
    st.integers(0, 2**32 - 1),
)
def test_sampled_equivalent_has_same_distribution_and_recovers_map(case, junk, extra, seed):
    """THEORY.md 7.1: same L (1e-9 relative), same k, residuals <= 1e-9 on both sides."""
    (model, _), _ = case
    k = aon.structure(model).k
    dim = k + 2 + extra  # widths different from d most of the time
    smp = aon.sample_equivalent(model, dim=dim, seed=seed, junk=junk)
    assert smp.model.d == dim
    assert rel(smp.model.log_odds(), model.log_odds()) < 1e-9
    # the models really are different parametrisations (not a copy)
    assert smp.model.F.shape[1] != model.F.shape[1] or not np.allclose(smp.model.F, model.F)
    eq = aon.equivalence(model, smp.model)
    assert eq.equivalent, eq.reasons
    assert eq.k_a == eq.k_b == k
    assert eq.residual_f <= 1e-9 and eq.residual_g <= 1e-9
    assert eq.rel_logodds_gap <= 1e-9 and eq.mean_kl <= 1e-12
    assert np.isfinite(eq.cond_A)
    # the ambient map B takes P_N f to P_N~ f~ for every context
    sa, sb = eq.structure_a, eq.structure_b
    assert rel(eq.map_f(model.F @ sa.N @ sa.N.T), smp.model.F @ sb.N @ sb.N.T) < 1e-8
    # the sampler's own f_map carries f to the identified block of f~ = T [A e_f; u; 0]
    Z = np.linalg.solve(smp.T, smp.model.F.T).T
    Zm = np.linalg.solve(smp.T, smp.f_map @ model.F.T).T
    kk = smp.blocks["k"]
    assert rel(Zm[:, :kk], Z[:, :kk]) < 1e-8
    assert np.abs(Zm[:, kk:]).max() <= 1e-8 * np.abs(Z).max()


# ----------------------------------------------------------------------------- theorem 2
@SETTINGS
@given(planted_case(), st.integers(0, 2**32 - 1), st.sampled_from([1e-6, 1e-3, 1.0]))
def test_perturbed_model_is_not_equivalent(case, seed, size):
    """THEORY.md 7.2: change one entry of the E-part of one f and the verdict flips."""
    (model, frame), _ = case
    rng = np.random.default_rng(seed)
    smp = aon.sample_equivalent(model, seed=seed)
    F = smp.model.F.copy()
    i = int(rng.integers(model.n))
    # move f~(x_i) along a direction that some logit reads: the image of E under f_map
    direction = smp.f_map @ frame["E"][:, int(rng.integers(frame["E"].shape[1]))]
    F[i] += size * direction / np.linalg.norm(direction) * np.linalg.norm(F[i])
    bad = aon.NextTokenPredictor(F, smp.model.G)
    eq = aon.equivalence(model, bad)
    assert not eq.equivalent
    assert eq.max_logodds_gap > 0 and eq.reasons


def test_distances_are_reported_for_close_models():
    rng = np.random.default_rng(1)
    model, _ = planted(rng)
    noisy = aon.NextTokenPredictor(model.F + 1e-4 * rng.standard_normal(model.F.shape), model.G)
    eq = aon.equivalence(model, noisy, tol=1e-2, rank_tol=1e-3)
    assert eq.k_a == eq.k_b
    assert 0 < eq.max_logodds_gap < 1e-2 and 0 < eq.mean_kl < 1e-5
    assert eq.equivalent  # within the user's tolerance
    strict = aon.equivalence(model, noisy, rank_tol=1e-3)
    assert not strict.equivalent


def _dense_distances(a, b):
    """max |L_a - L_b| and mean KL(p_a || p_b) over all contexts, materialised (small models)."""
    from scipy.special import log_softmax

    la, lb = a.log_odds(allow_large=True), b.log_odds(allow_large=True)
    pa, pb = log_softmax(la, axis=1), log_softmax(lb, axis=1)
    return np.abs(la - lb).max(), float(np.mean((np.exp(pa) * (pa - pb)).sum(axis=1)))


@SETTINGS
@given(
    planted_case(),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1e-3, 0.1, 3.0, 60.0]),
    st.booleans(),
)
def test_streamed_distances_match_the_materialised_ones(case, seed, size, single):
    """Gap and KL from the one-pass streamed computation equal the dense ones, in float64
    and float32, including log-odds gaps beyond float32's exp range (size 60)."""
    (model, _), _ = case
    rng = np.random.default_rng(seed)
    G = model.G + size * rng.standard_normal(model.G.shape) / np.sqrt(model.d)
    if single:
        a = aon.NextTokenPredictor(model.F.astype(np.float32), model.G.astype(np.float32))
        b = aon.NextTokenPredictor(model.F.astype(np.float32), G.astype(np.float32))
    else:
        a, b = model, aon.NextTokenPredictor(model.F, G)
    eq = aon.equivalence(a, b, max_rows=None)
    gap, kl = _dense_distances(a, b)
    assert eq.rows_evaluated == a.n
    tol = 1e-4 if single else 1e-9  # float32 products: ~1e-6 relative to the log-odds
    assert eq.max_logodds_gap == pytest.approx(gap, rel=tol, abs=tol * np.abs(a.log_odds()).max())
    assert eq.mean_kl == pytest.approx(kl, rel=10 * tol, abs=1e-12)


def test_near_equal_models_get_their_true_tiny_kl():
    """KL = E[diff] + log E[exp(-diff)] cancels exactly at first order: a 1e-7 relative
    perturbation gives KL ~ 1e-15, not rounding noise of the log-normalisers (~1e-16 x |L|)."""
    rng = np.random.default_rng(5)
    model, _ = planted(rng, n=30, V=40, d=8, k=4, jf=1, jg=2)
    close = aon.NextTokenPredictor(model.F * (1 + 1e-7), model.G)
    eq = aon.equivalence(model, close, max_rows=None)
    _, kl = _dense_distances(model, close)
    assert eq.mean_kl == pytest.approx(kl, rel=1e-3)
    assert 0 < eq.mean_kl < 1e-12


def test_parallel_and_sequential_passes_agree(monkeypatch):
    """Two threads (each half of the vocabulary, partial softmax states merged) give the same
    numbers as one; V is large enough for the split."""
    rng = np.random.default_rng(6)
    model, _ = planted(rng, n=20, V=40_000, d=7, k=4, jf=1, jg=2)
    other = aon.NextTokenPredictor(model.F, model.G + 0.01 * rng.standard_normal(model.G.shape))
    out = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("ALLORNONE_NUM_THREADS", threads)
        out[threads] = aon.equivalence(model, other).summary()
    for key, value in out["1"].items():
        if isinstance(value, float):
            assert out["2"][key] == pytest.approx(value, rel=1e-10, abs=1e-300), key
        else:
            assert out["2"][key] == value, key


@pytest.mark.parametrize("k,d", [(2, 10), (9, 10), (6, 6)])
def test_g_residual_matches_its_definition(k, d):
    """Both forms of the g-side residual (E coordinates when k << d, ambient otherwise) equal
    ||e_g^a A^-1 - e_g^b|| / ||e_g^b|| computed from the effective models."""
    rng = np.random.default_rng(k * 100 + d)
    model, _ = planted(rng, n=40, V=60, d=d, k=k, jf=0, jg=d - k)
    smp = aon.sample_equivalent(model, seed=3, dim=d, junk="zero")  # rank F~ = k
    G = smp.model.G + 1e-3 * rng.standard_normal(smp.model.G.shape)  # so k stays k
    b = aon.NextTokenPredictor(smp.model.F, G)
    eq = aon.equivalence(model, b)
    assert eq.k_a == eq.k_b == k and eq.residual_g > 1e-5
    sa, sb = eq.structure_a, eq.structure_b

    def residual(x, y):  # ||x - y|| / ||y||, the definition in Equivalence
        return np.linalg.norm(x - y) / np.linalg.norm(y)

    assert eq.residual_g == pytest.approx(residual(sa.e_g @ np.linalg.inv(eq.A), sb.e_g), rel=1e-8)
    assert eq.residual_f == pytest.approx(residual(sa.e_f @ eq.A.T, sb.e_f), rel=1e-8)


def test_g_residual_with_fewer_tokens_than_dimensions():
    """V = 9 < d = 10: the complement of E is completed by QR (no trailing singular vectors
    of G0 to take it from)."""
    rng = np.random.default_rng(15)
    F = rng.standard_normal((30, 8)) @ rng.standard_normal((8, 10))
    model = aon.NextTokenPredictor(F, rng.standard_normal((9, 10)))
    other = aon.NextTokenPredictor(F, model.G + 1e-3 * rng.standard_normal((9, 10)))
    eq = aon.equivalence(model, other)
    sa, sb = eq.structure_a, eq.structure_b
    assert eq.k_a == eq.k_b == 8
    direct = np.linalg.norm(sa.e_g @ np.linalg.inv(eq.A) - sb.e_g) / np.linalg.norm(sb.e_g)
    assert eq.residual_g == pytest.approx(direct, rel=1e-8) and direct > 1e-5


def test_run_parallel_keeps_order_and_raises(monkeypatch):
    from allornone._parallel import cpu_count, run_parallel

    monkeypatch.setenv("ALLORNONE_NUM_THREADS", "2")
    assert cpu_count() == 2
    assert run_parallel([lambda i=i: i * i for i in range(5)]) == [0, 1, 4, 9, 16]

    def boom():
        raise ValueError("task failed")

    with pytest.raises(ValueError, match="task failed"):
        run_parallel([lambda: 1, boom])
    monkeypatch.setenv("ALLORNONE_NUM_THREADS", "1")
    assert cpu_count() == 1 and run_parallel([lambda: 1, lambda: 2]) == [1, 2]


def test_noise_in_a_transformed_model_does_not_enter_N():
    """Regression (found by hypothesis): a sampled model whose G0 has one rounding-noise
    singular value just above 10 eps ||G0||_F got dim N = 2 and, through E = P_N(M), a
    contaminated E; the cut now also requires a direction to be able to move L."""
    model, _ = planted(np.random.default_rng(1), n=10, V=33, d=1, k=1, jf=0, jg=0)
    smp = aon.sample_equivalent(model, dim=7, seed=2955, junk="zero")
    eq = aon.equivalence(model, smp.model)
    sa, sb = eq.structure_a, eq.structure_b
    assert sb.dim_N == 1 and sb.dim_M == 1
    assert rel(eq.map_f(model.F @ sa.N @ sa.N.T), smp.model.F @ sb.N @ sb.N.T) < 1e-8


def test_float32_pair_uses_single_precision_pass_and_keeps_the_verdict():
    """Both models float32: normal equations and the float32 vocabulary pass. An equivalent
    pair is equivalent with residuals at float32 rounding; a 1e-2 change in one unembedding
    is caught on the g side."""
    rng = np.random.default_rng(8)
    model, _ = planted(rng, n=60, V=300, d=10, k=6, jf=2, jg=2)
    smp = aon.sample_equivalent(model, seed=4, dim=12)
    a = aon.NextTokenPredictor(model.F.astype(np.float32), model.G.astype(np.float32))
    b = aon.NextTokenPredictor(smp.model.F.astype(np.float32), smp.model.G.astype(np.float32))
    eq = aon.equivalence(a, b)
    assert eq.equivalent, eq.reasons
    assert eq.residual_f < 1e-5 and eq.residual_g < 1e-5 and eq.mean_kl < 1e-9
    G = b.G.copy()
    G[7] += 1e-2 * np.linalg.norm(G[7]) * rng.standard_normal(12) / np.sqrt(12)
    bad = aon.equivalence(a, aon.NextTokenPredictor(b.F.astype(np.float32), G.astype(np.float32)))
    assert not bad.equivalent and bad.residual_g > bad.tol


def test_normal_equations_fall_back_to_qr_when_ill_conditioned(monkeypatch):
    eq_mod = importlib.import_module("allornone.equivalence")
    rng = np.random.default_rng(9)
    X = rng.standard_normal((50, 4))
    Y = X @ rng.standard_normal((4, 4))
    W = eq_mod._solve_normal(X.T @ X, X.T @ Y, tol=3.5e-4)
    np.testing.assert_allclose(X @ W, Y, atol=1e-10)
    Xbad = X * np.array([1, 1, 1, 1e-7])  # cond(X^T X) ~ 1e14: squaring loses the answer
    assert eq_mod._solve_normal(Xbad.T @ Xbad, Xbad.T @ Y, tol=3.5e-4) is None
    # the QR route gives the same verdict and map as the normal equations on float32 models
    model, _ = planted(rng, n=40, V=50, d=8, k=5, jf=1, jg=1)
    smp = aon.sample_equivalent(model, seed=2)
    a = aon.NextTokenPredictor(model.F.astype(np.float32), model.G.astype(np.float32))
    b = aon.NextTokenPredictor(smp.model.F.astype(np.float32), smp.model.G.astype(np.float32))
    fast = aon.equivalence(a, b)
    monkeypatch.setattr(eq_mod, "_solve_normal", lambda *args: None)
    qr = aon.equivalence(a, b)
    assert fast.equivalent and qr.equivalent
    np.testing.assert_allclose(fast.A, qr.A, rtol=1e-6, atol=1e-6 * np.abs(qr.A).max())


# ----------------------------------------------------------------------------- theorem 3
@SETTINGS
@given(planted_case(), st.integers(0, 2**32 - 1))
def test_equivalence_verdict_independent_of_pivot(case, seed):
    (model, _), _ = case
    smp = aon.sample_equivalent(model, seed=seed)
    pivot = int(np.random.default_rng(seed).integers(model.V))
    a = aon.equivalence(model, smp.model)
    b = aon.equivalence(model, smp.model, pivot=pivot)
    assert a.equivalent and b.equivalent and a.k_a == b.k_a
    bad_F = smp.model.F.copy()
    bad_F[0] *= 1.5
    bad = aon.NextTokenPredictor(bad_F, smp.model.G)
    assert (
        aon.equivalence(model, bad).equivalent
        == aon.equivalence(model, bad, pivot=pivot).equivalent
    )


# ------------------------------------------------------------------- construction, items 4-6
def test_adversarial_sample_breaks_junk_readouts_and_keeps_identified_ones():
    """Construction side of THEORY.md 7.4-7.6 (the property modules test the rest)."""
    rng = np.random.default_rng(5)
    model, frame = planted(rng, n=60, V=80, d=12, k=4, jf=2, jg=3)
    smp = aon.sample_equivalent(model, seed=7, junk="adversarial")
    F2 = smp.model.F
    # probe reading J_f: its scores cannot be reproduced by any linear probe on f~
    s_junk = model.F @ frame["J_f"][:, 0]
    resid = _lstsq_resid(F2, s_junk)
    assert resid > 0.5
    # probe in N (reading E): reproduced exactly
    s_ok = model.F @ frame["E"][:, 0]
    assert _lstsq_resid(F2, s_ok) < 1e-9
    # steering vector in J_g: its log-odds shift G0 v is not reproduced by any v~
    G0, G02 = model.G0(), smp.model.G0()
    assert _lstsq_resid(G02, G0 @ frame["J_g"][:, 0]) > 0.5
    assert _lstsq_resid(G02, G0 @ frame["E"][:, 0]) < 1e-9
    # raw parallelism with M != R^d: two differences parallel in g, not in g~
    y = rng.choice(model.V, 4, replace=False)
    G = model.G.copy()
    G[y[1]] = G[y[0]] + 0.5 * (G[y[3]] - G[y[2]])  # plant an exactly parallel pair
    m2 = aon.NextTokenPredictor(model.F, G)
    s2 = aon.sample_equivalent(m2, seed=3, junk="adversarial")
    cos = lambda a, b: abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    assert cos(G[y[1]] - G[y[0]], G[y[3]] - G[y[2]]) == pytest.approx(1.0, abs=1e-12)
    g2 = s2.model.G
    assert cos(g2[y[1]] - g2[y[0]], g2[y[3]] - g2[y[2]]) < 0.99
    # ...and preserved between models with M = R^d (no room for g-junk): all f-junk
    full = aon.NextTokenPredictor(rng.standard_normal((60, 12)), G)
    sf = aon.structure(full)
    assert sf.dim_M == 12
    s3 = aon.sample_equivalent(full, seed=3, dim=12, junk="random", junk_dims=(12 - sf.k, 0))
    assert aon.structure(s3.model).dim_M == 12
    g3 = s3.model.G
    assert cos(g3[y[1]] - g3[y[0]], g3[y[3]] - g3[y[2]]) == pytest.approx(1.0, abs=1e-9)


def _lstsq_resid(X, y):
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(np.linalg.norm(X @ coef - y) / np.linalg.norm(y))


# ----------------------------------------------------------------------------- inputs
def test_float32_and_torch_inputs():
    rng = np.random.default_rng(2)
    model, _ = planted(rng, n=40, V=60, d=10, k=3, jf=2, jg=2)
    m32 = aon.NextTokenPredictor(model.F.astype(np.float32), model.G.astype(np.float32))
    s32 = aon.structure(m32)
    assert s32.k == 3 and m32.eps == np.finfo(np.float32).eps
    mt = aon.NextTokenPredictor(torch.tensor(model.F, dtype=torch.float32), torch.tensor(model.G))
    assert aon.structure(mt).k == 3
    eq = aon.equivalence(model, m32)
    assert eq.equivalent and eq.tol == pytest.approx(np.sqrt(np.finfo(np.float32).eps))
    assert 0 < eq.max_logodds_gap < 1e-4
    bf = aon.NextTokenPredictor(torch.tensor(model.F).bfloat16(), torch.tensor(model.G))
    assert bf.eps == pytest.approx(2**-7)


def test_bias_absorption_reproduces_logits():
    rng = np.random.default_rng(4)
    F, G, b = rng.standard_normal((7, 5)), rng.standard_normal((9, 5)), rng.standard_normal(9)
    m = aon.NextTokenPredictor(F, G, bias=b)
    assert m.d == 6 and m.has_bias
    np.testing.assert_allclose(m.logits(), F @ G.T + b, rtol=1e-12)
    lp = F @ G.T + b
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    np.testing.assert_allclose(m.log_probs(), lp, atol=1e-12)


def test_from_logits_and_log_probs_roundtrip():
    rng = np.random.default_rng(6)
    model, _ = planted(rng, n=20, V=30, d=8, k=3, jf=1, jg=1)
    logits = model.logits() + rng.standard_normal((20, 1))  # per-row constants do not matter
    a = aon.NextTokenPredictor.from_logits(logits)
    assert a.source == "logits" and a.d == 3
    assert aon.equivalence(model, a).equivalent
    b = aon.NextTokenPredictor.from_log_probs(model.log_probs())
    assert aon.equivalence(model, b).equivalent
    with pytest.raises(aon.AllOrNoneError, match="not normalised"):
        aon.NextTokenPredictor.from_log_probs(model.logits() + 5)


def test_streamed_log_normalizer_matches_dense():
    rng = np.random.default_rng(8)
    F, G = 3 * rng.standard_normal((5, 4)), rng.standard_normal((1000, 4))
    m = aon.NextTokenPredictor(F, G)
    from scipy.special import logsumexp

    np.testing.assert_allclose(m.log_normalizer(chunk=77), logsumexp(F @ G.T, axis=1))


def test_labels_selection_and_subset():
    rng = np.random.default_rng(9)
    F, G = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    m = aon.NextTokenPredictor(F, G, contexts=["a", "b", "c"], tokens=list("vwxyz"))
    np.testing.assert_allclose(m.logits(["b"], ["x", "z"]), F[[1]] @ G[[2, 4]].T)
    sub = m.subset(cols=["w", "x", "y"])
    np.testing.assert_allclose(sub.probs().sum(1), 1.0)
    assert sub.tokens == ["w", "x", "y"]
    with pytest.raises(aon.AllOrNoneError, match="unknown token"):
        m.logits(cols=["nope"])


@pytest.mark.parametrize(
    "F,G,match",
    [
        (np.full((3, 2), np.nan), np.ones((4, 2)), "F has 6 non-finite"),
        (np.ones((3, 2)), np.ones((4, 3)), "same space"),
        (np.ones((3, 2), dtype=int), np.ones((4, 2)), "dtype int"),
        (np.array([[object()]]), np.ones((4, 1)), "object array"),
        (np.ones(3), np.ones((4, 3)), "2-D"),
        (np.ones((0, 2)), np.ones((4, 2)), "empty"),
        (np.ones((3, 2)), np.ones((1, 2)), "at least 2 tokens"),
    ],
)
def test_bad_inputs_name_the_argument(F, G, match):
    with pytest.raises(aon.AllOrNoneError, match=match):
        aon.NextTokenPredictor(F, G)


def test_bad_structure_equivalence_and_sampler_inputs():
    rng = np.random.default_rng(10)
    model, _ = planted(rng, n=20, V=30, d=8, k=3, jf=1, jg=1)
    with pytest.raises(aon.AllOrNoneError, match="k = 0"):
        aon.structure(aon.NextTokenPredictor(np.ones((4, 3)), np.ones((5, 3))))
    with pytest.raises(aon.AllOrNoneError, match="NextTokenPredictor"):
        aon.structure(model.F)
    other = aon.NextTokenPredictor(model.F, model.G[:-1])
    with pytest.raises(aon.AllOrNoneError, match="V=30.*V=29"):
        aon.equivalence(model, other)
    with pytest.raises(aon.AllOrNoneError, match="contexts"):
        aon.equivalence(model, aon.NextTokenPredictor(model.F[:-1], model.G))
    a = aon.NextTokenPredictor(model.F, model.G, tokens=[f"t{i}" for i in range(30)])
    b = aon.NextTokenPredictor(model.F, model.G, tokens=[f"t{i}" for i in range(29)] + ["x"])
    with pytest.raises(aon.AllOrNoneError, match="position 29"):
        aon.equivalence(a, b)
    with pytest.raises(aon.AllOrNoneError, match="below the effective complexity k=3"):
        aon.sample_equivalent(model, dim=2)
    with pytest.raises(aon.AllOrNoneError, match="room on both sides"):
        aon.sample_equivalent(model, dim=4, junk="adversarial")
    with pytest.raises(aon.AllOrNoneError, match="junk must be"):
        aon.sample_equivalent(model, junk="weird")
    with pytest.raises(aon.AllOrNoneError, match="one per token"):
        aon.sample_equivalent(model, junk=(np.zeros((20, 1)), np.zeros((3, 1))))
    st_center = aon.structure(model)
    with pytest.raises(aon.AllOrNoneError, match="pivot"):
        aon.equivalence(model, model, pivot=0, structures=(st_center, st_center))


def test_near_rank_deficient_reports_gap():
    rng = np.random.default_rng(11)
    model, _ = planted(rng, n=30, V=40, d=8, k=3, jf=0, jg=0)
    F = model.F + 1e-9 * rng.standard_normal(model.F.shape)  # a whisper of extra rank
    s = aon.structure(aon.NextTokenPredictor(F, model.G))
    assert s.k > 3 and not s.sharp or s.k == 3
    s2 = aon.structure(aon.NextTokenPredictor(F, model.G), tol=1e-6)
    assert s2.k == 3 and s2.gap > 1e3 and "k=3" in s2.decision
    assert s2.energy_rank <= 3


def test_log_odds_guard_refuses_huge_blocks():
    m = aon.NextTokenPredictor(np.ones((2, 1)), np.ones((3, 1)))
    import allornone.predictor as p

    old = p.MAX_DENSE_ENTRIES
    p.MAX_DENSE_ENTRIES = 5
    try:
        with pytest.raises(aon.AllOrNoneError, match="refusing to materialise"):
            m.log_odds()
        assert m.log_odds(allow_large=True).shape == (2, 3)
    finally:
        p.MAX_DENSE_ENTRIES = old


def test_models_of_different_complexity_still_get_a_best_map():
    """Approximate comparisons (compare, study): k differs, the best linear map is reported."""
    rng = np.random.default_rng(12)
    model, _ = planted(rng, n=60, V=70, d=12, k=5, jf=2, jg=2)
    s = aon.structure(model)
    # a lower-complexity model: keep only 3 of the 5 effective directions
    F3 = s.e_f[:, :3] @ rng.standard_normal((3, 7))
    G3 = s.e_g[:, :3] @ np.linalg.pinv(rng.standard_normal((3, 7))).T
    low = aon.NextTokenPredictor(F3, G3)
    eq = aon.equivalence(model, low)
    assert not eq.equivalent and eq.k_a == 5 and eq.k_b == 3
    assert eq.A.shape == (3, 5)
    assert eq.residual_f < 1e-9  # the 3 kept directions are a linear image of the 5
    assert eq.residual_f_reverse > 0.1  # but the 5 cannot be recovered from the 3
    assert any("k=5 vs k=3" in r for r in eq.reasons)


def test_memoized_r_factors_compute_each_input_once(monkeypatch):
    from allornone import linalg

    calls = []
    real = linalg._tsqr
    monkeypatch.setattr(linalg, "_tsqr", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(13)
    G = rng.standard_normal((linalg.MEMO_MIN_ROWS, 6))
    shift = G.mean(axis=0)
    plain = linalg.r_factor(G, shift=shift)
    with linalg.memoized_r_factors() as memo:
        first = linalg.r_factor(G, shift=shift)
        again = linalg.r_factor(G.copy(), shift=shift.copy())  # same content, another array
        other = linalg.r_factor(G, shift=None)
        assert len(memo) == 2
    after = linalg.r_factor(G, shift=shift)  # outside the block: computed again
    assert len(calls) == 1 + 2 + 1
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(again, first)
    assert not np.allclose(other.T @ other, first.T @ first)
    np.testing.assert_array_equal(after, plain)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gap_is_identified_across_float32_copies(seed):
    # sigma_{k+1} of a float32 model is rounding noise of its factors: it moves with a diagonal
    # reparametrisation f -> D f, g -> D^-1 g (same distribution); the gap is measured against
    # the identified noise floor, so it does not (issue 27: 55,557 vs 40,486 on SmolLM2)
    rng = np.random.default_rng(seed)
    m, _ = planted(rng, n=300, V=500, d=24, k=16, jf=3, jg=3)
    F, G = m.F.astype(np.float32), m.G.astype(np.float32)
    D = np.exp(rng.standard_normal(24))
    a = aon.structure(aon.NextTokenPredictor(F, G))
    b = aon.structure(
        aon.NextTokenPredictor((F * D).astype(np.float32), (G / D).astype(np.float32))
    )
    assert a.k == b.k == 16
    raw = [s.singular_values[16] for s in (a, b)]
    assert abs(raw[0] / raw[1] - 1) > 0.1  # the noise itself differs between the copies
    assert a.gap == pytest.approx(b.gap, rel=1e-5) and a.sharp and b.sharp
    assert a.noise_floor == pytest.approx(b.noise_floor, rel=1e-5)
    assert a.noise_floor <= a.threshold and b.noise_floor <= b.threshold  # the smallest floor
    assert a.noise_floor > max(raw)
