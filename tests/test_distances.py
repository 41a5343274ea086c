"""d_LLV and d_{f,g} (THEORY.md 10): dense reference, zero on the class, the bound, the
paper's small-KL construction, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planted import planted

import allornone as aon


def _dense_reference(a, b, y0: int, x0: int, lam: float) -> dict[str, float]:
    """The definitions of THEORY.md 10 computed literally on dense log-probabilities."""
    pa, pb = a.log_probs(allow_large=True), b.log_probs(allow_large=True)
    V, n = pa.shape[1], pa.shape[0]
    tok, tok_sd = [], []
    for y in range(V):
        if y == y0:
            continue
        sa, sb = np.std(pa[:, y] - pa[:, y0]), np.std(pb[:, y] - pb[:, y0])
        tok.append(np.std(pa[:, y] / sa - pb[:, y] / sb))
        tok.append(np.std(pa[:, y0] / sa - pb[:, y0] / sb))
        tok_sd.append(abs(sa - sb))
    ctx, ctx_sd = [], []
    for x in range(n):
        if x == x0:
            continue
        ta, tb = np.std(pa[x] - pa[x0]), np.std(pb[x] - pb[x0])
        ctx.append(np.std(pa[x] / ta - pb[x] / tb))
        ctx.append(np.std(pa[x0] / ta - pb[x0] / tb))
        ctx_sd.append(abs(ta - tb))
    kl = float(np.mean((np.exp(pa) * (pa - pb)).sum(axis=1)))
    d = max(max(tok), max(ctx), lam * max(tok_sd), lam * max(ctx_sd))
    return {"d_llv": d, "token_term": max(tok), "context_term": max(ctx), "mean_kl": kl}


def _dense_d_svd(a, b, S, y0, X, x0) -> tuple[float, float]:
    """``1 - m_SVD`` literally: standardised coordinates, cross-covariance, singular values."""

    def m_svd(A, B):
        A = (A - A.mean(0)) / A.std(0)
        B = (B - B.mean(0)) / B.std(0)
        return np.linalg.svd(A.T @ B / A.shape[0], compute_uv=False).mean()

    La, Lb = a.log_probs(allow_large=True), b.log_probs(allow_large=True)
    f_side = m_svd(La[:, S] - La[:, [y0]], Lb[:, S] - Lb[:, [y0]])
    g_side = m_svd((La[X] - La[[x0]]).T, (Lb[X] - Lb[[x0]]).T)
    return 1 - f_side, 1 - g_side


def _perturbed(m, scale: float, rng):
    return aon.NextTokenPredictor(
        m.F + scale * rng.standard_normal(m.F.shape), m.G + scale * rng.standard_normal(m.G.shape)
    )


def test_streamed_terms_equal_the_dense_definition():
    rng = np.random.default_rng(0)
    a, _ = planted(rng, n=30, V=40)
    b = _perturbed(a, 0.05, rng)
    r = aon.distances(a, b, pivot_token=3, pivot_context=2, block=7)  # several blocks
    ref = _dense_reference(a, b, 3, 2, r.lam)
    for key, val in ref.items():
        assert getattr(r, key) == pytest.approx(val, rel=1e-9, abs=1e-13), key
    assert r.mean_kl == pytest.approx(aon.equivalence(a, b, max_rows=None).mean_kl, rel=1e-6)


def test_d_svd_equals_the_dense_definition():
    rng = np.random.default_rng(1)
    a, _ = planted(rng, n=30, V=40)
    b = _perturbed(a, 0.3, rng)
    S, X = [1, 5, 9, 11], [3, 4, 8, 20]
    d_f, d_g = aon.representation_dissimilarity(
        a, b, tokens=S, contexts=X, pivot_token=0, pivot_context=0
    )
    ref = _dense_d_svd(a, b, S, 0, X, 0)
    assert (d_f, d_g) == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert 0.01 < d_f < 1 and 0.01 < d_g < 1  # a real difference, not a degenerate case


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    junk=st.sampled_from(["random", "zero", "shuffle", "adversarial"]),
    extra=st.integers(2, 9),
)
def test_zero_on_equivalent_models_of_any_width(seed, junk, extra):
    rng = np.random.default_rng(seed)
    m, _ = planted(rng, n=40, V=50)
    s = aon.sample_equivalent(m, dim=m.d - 6 + extra, junk=junk, seed=seed + 1)
    r = aon.distances(m, s, seed=seed)
    assert r.d_llv < 1e-9 and r.d_fg < 1e-9 and r.mean_kl < 1e-12
    assert r.d_b == s.model.d and r.dim == min(m.d, s.model.d)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-4, 1.0))
def test_the_bound_holds_on_random_pairs(seed, scale):
    rng = np.random.default_rng(seed)
    a, _ = planted(rng, n=40, V=50)
    for b in (_perturbed(a, scale, rng), planted(rng, n=40, V=50)[0]):
        r = aon.distances(a, b, seed=seed)
        assert 0 <= r.d_fg <= 1
        assert r.d_fg <= r.bound + 1e-12, (r.d_fg, r.d_llv)
        assert r.d_fg <= r.paper_bound + 1e-12


def test_bound_is_not_vacuous_on_close_pairs():
    rng = np.random.default_rng(3)
    a, _ = planted(rng)
    r = aon.distances(a, _perturbed(a, 1e-3, rng))
    assert 0 < r.d_fg < r.bound < 1e-3  # small, measured, and bounded


def circle_pair(length: float, classes: int = 7, per: int = 40, seed: int = 0):
    """The paper's construction: a 2-d classifier with evenly spaced unembeddings and inputs
    near their class's direction; the second model assigns the classes to the directions in
    another order (a permutation no linear map undoes). Longer unembeddings make both models
    confident on the right class, so KL goes to 0 while the representations stay unrelated."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(classes) / classes
    jitter = rng.uniform(-np.pi / 64, np.pi / 64, (classes, per))
    radius = 2 + np.abs(0.01 * rng.standard_normal((classes, per)))

    def model(ang):
        th = (ang[:, None] + jitter).reshape(-1)
        F = radius.reshape(-1)[:, None] * np.stack([np.cos(th), np.sin(th)], 1)
        return aon.NextTokenPredictor(F, length * np.stack([np.cos(ang), np.sin(ang)], 1))

    return model(angles), model(angles[[5, 0, 2, 4, 6, 1, 3]])


def test_small_kl_does_not_mean_similar_representations():
    kls, dfg = [], []
    for length in (2.0, 10.0, 20.0):
        a, b = circle_pair(length)
        r = aon.distances(a, b)
        kls.append(r.mean_kl)
        dfg.append(r.d_fg)
        assert r.d_fg <= r.bound + 1e-12
    assert kls[0] > 0.1 and kls[-1] < 1e-4  # KL goes to zero ...
    assert min(dfg) > 0.5  # ... the representations stay far apart
    a, b = circle_pair(20.0)
    assert aon.distances(a, b).d_llv > 1  # and d_LLV sees it
    assert aon.distances(a, aon.sample_equivalent(a, dim=4, seed=0)).d_fg < 1e-9


def test_frame_lists_identified_columns():
    rng = np.random.default_rng(4)
    a, _ = planted(rng)
    df = aon.distances(a, aon.sample_equivalent(a, seed=2)).to_frame()
    assert len(df) == 1
    assert {"d_llv", "d_fg", "d_f", "d_g", "mean_kl", "bound"} <= set(df.attrs["identified"])
    assert df.attrs["raw"] == ["d_a", "d_b"]
    assert "d_llv" in aon.distances(a, a)._repr_html_()


def test_bad_input_gets_one_line_errors():
    rng = np.random.default_rng(5)
    a, _ = planted(rng)
    b, _ = planted(rng, n=20)
    with pytest.raises(aon.AllOrNoneError, match="contexts"):
        aon.distances(a, b)
    with pytest.raises(aon.AllOrNoneError, match="lam"):
        aon.distances(a, a, lam=-1.0)
    with pytest.raises(aon.AllOrNoneError, match="draws"):
        aon.distances(a, a, draws=0)
    with pytest.raises(aon.AllOrNoneError, match="dim=999"):
        aon.distances(a, a, dim=999)
    with pytest.raises(aon.AllOrNoneError, match="pivot"):
        aon.representation_dissimilarity(
            a, a, tokens=[0, 1], contexts=[1, 2], pivot_token=0, pivot_context=0
        )
    with pytest.raises(aon.AllOrNoneTypeError):
        aon.distances(a, "not a model")


def test_study_pair_rows_get_the_distances_and_calibrated_map():
    from allornone.family.study import _pair_similarity

    m, _ = planted(np.random.default_rng(9), n=90)
    preds = {"a": m, "b": aon.sample_equivalent(m, junk="adversarial", seed=1).model}
    preds["c"] = _perturbed(m, 0.5, np.random.default_rng(2))
    sts = {k: aon.structure(p) for k, p in preds.items()}
    same = _pair_similarity(preds, sts, "a", "b", seed=0)
    assert same["d_llv"] < 1e-9 and same["d_fg"] < 1e-9
    assert same["map_similarity_calibrated"] > 1 - 1e-9 and same["map_similarity_p"] == 0.01
    other = _pair_similarity(preds, sts, "a", "c", seed=0)
    assert other["d_llv"] > 1e-3 and other["d_fg"] <= other["d_fg_bound"] + 1e-12


def test_results_do_not_depend_on_the_storage_dtype():
    # the same two models stored as float32 and as float64 (equal values): every product is
    # float64, so the distances agree to float64 rounding (float32 products gave 4.9e-7
    # between a model and its float64 copy)
    rng = np.random.default_rng(5)
    a, _ = planted(rng, n=60, V=300, d=16, k=10, jf=2, jg=3)
    b = _perturbed(a, 0.05, rng)
    f32 = [aon.NextTokenPredictor(m.F.astype(np.float32), m.G.astype(np.float32)) for m in (a, b)]
    f64 = [aon.NextTokenPredictor(m.F.astype(np.float64), m.G.astype(np.float64)) for m in f32]
    assert f32[0].G.dtype == np.float32 and f64[0].G.dtype == np.float64
    r32, r64 = aon.distances(*f32, block=64), aon.distances(*f64, block=64)
    for key, val in r64.summary().items():
        assert getattr(r32, key) == pytest.approx(val, rel=1e-12, abs=1e-14), key
    same = aon.distances(f32[0], f64[0], block=64)
    assert same.d_llv < 1e-12 and same.d_fg < 1e-12 and same.mean_kl < 1e-14
    d32 = aon.representation_dissimilarity(
        *f32, tokens=[1, 2, 3], contexts=[4, 5, 6], pivot_token=0, pivot_context=0
    )
    d64 = aon.representation_dissimilarity(
        *f64, tokens=[1, 2, 3], contexts=[4, 5, 6], pivot_token=0, pivot_context=0
    )
    assert d32 == pytest.approx(d64, rel=1e-12, abs=1e-14)


def _reference_d_prob(a, b, y0, lo, sets, lam):
    """The estimator of the paper's code (``d_prob`` of bemigini/close-dist-rep-sim with
    dist_type="max", sum_or_max="max"), written out literally on dense log-probabilities:
    unbiased variances, labels without the left-out one, the input set whose largest input term
    is smallest. Returns (d, label term, input term, chosen set)."""
    P1, P2 = a.log_probs(allow_large=True).T, b.log_probs(allow_large=True).T  # labels x inputs

    def var(x, axis):
        return np.var(x, axis=axis, ddof=1)

    keep = [y for y in range(P1.shape[0]) if y not in (y0, lo)]
    t1, t3 = [], []
    for y in keep:
        va, vb = var(P1[y] - P1[y0], 0), var(P2[y] - P2[y0], 0)
        t1.append(np.sqrt(var(P1[y] / np.sqrt(va) - P2[y] / np.sqrt(vb), 0)))
        t1.append(np.sqrt(var(P1[y0] / np.sqrt(va) - P2[y0] / np.sqrt(vb), 0)))
        t3.append(abs(np.sqrt(va) - np.sqrt(vb)))

    def input_terms(s):
        x0, rest = s[0], s[1:]
        t2, t4 = [], []
        for x in rest:
            va, vb = var(P1[:, x] - P1[:, x0], 0), var(P2[:, x] - P2[:, x0], 0)
            t2.append(np.sqrt(var(P1[:, x] / np.sqrt(va) - P2[:, x] / np.sqrt(vb), 0)))
            t2.append(np.sqrt(var(P1[:, x0] / np.sqrt(va) - P2[:, x0] / np.sqrt(vb), 0)))
            t4.append(abs(np.sqrt(va) - np.sqrt(vb)))
        return max(t2), max(t4)

    best = min(sets, key=lambda s: input_terms(s)[0])
    t2, t4 = input_terms(best)
    return max(max(t1), t2, lam * max(t3), lam * t4), max(t1), t2, list(best)


def _reference_pivot_and_left_out(a, b):
    """The paper's code's search: the (pivot, left-out) pair whose largest remaining label term
    is smallest (first in row-major order on ties)."""
    P1, P2 = a.log_probs(allow_large=True).T, b.log_probs(allow_large=True).T
    V = P1.shape[0]
    best, arg = np.inf, None
    for k in range(V):
        per = {}
        for y in range(V):
            if y == k:
                continue
            va, vb = np.var(P1[y] - P1[k], ddof=1), np.var(P2[y] - P2[k], ddof=1)
            r = np.sqrt(np.var(P1[y] / np.sqrt(va) - P2[y] / np.sqrt(vb), ddof=1))
            p = np.sqrt(np.var(P1[k] / np.sqrt(va) - P2[k] / np.sqrt(vb), ddof=1))
            per[y] = max(r, p)
        for lo in per:
            val = max(v for y, v in per.items() if y != lo)
            if val < best:
                best, arg = val, (k, lo)
    return arg


def test_paper_estimator_equals_the_reference_on_fixed_pivots_and_sets():
    rng = np.random.default_rng(11)
    a, _ = planted(rng, n=40, V=15, d=6, k=4, jf=1, jg=1)
    b = _perturbed(a, 0.05, rng)
    sets = [[0, 3, 5, 7, 9], [10, 12, 14, 16, 18], [20, 21, 22, 23, 24]]
    r = aon.paper_d_llv(a, b, pivot_token=2, left_out=6, input_sets=sets, block=4)
    d, t1, t2, best = _reference_d_prob(a, b, 2, 6, sets, r.lam)
    assert r.d_llv == pytest.approx(d, rel=1e-10)
    assert r.label_term == pytest.approx(t1, rel=1e-10)
    assert r.input_term == pytest.approx(t2, rel=1e-10)
    assert [r.input_pivot, *r.input_set] == best
    assert (r.pivot_token, r.left_out) == (2, 6)
    # with lam = 1 the sd terms (unbiased variances) count too
    r1 = aon.paper_d_llv(a, b, pivot_token=2, left_out=6, input_sets=sets[:1], lam=1.0)
    assert r1.d_llv == pytest.approx(_reference_d_prob(a, b, 2, 6, sets[:1], 1.0)[0], rel=1e-10)
    # the searched pivot and left-out label are the reference's; never above distances()
    s = aon.paper_d_llv(a, b, input_sets=sets)
    assert (s.pivot_token, s.left_out) == _reference_pivot_and_left_out(a, b)
    assert len(s.candidates) == a.V and s.label_term == pytest.approx(s.label_terms.min())
    full = aon.distances(a, b, pivot_token=s.pivot_token, pivot_context=s.input_pivot)
    assert s.label_term <= full.token_term + 1e-12 and s.input_term <= full.context_term + 1e-12
    assert s.d_llv <= s.d_llv_worst and s.summary()["pivots_tried"] == a.V


def test_paper_estimator_is_zero_on_equivalent_models_and_reports_sensitivity():
    rng = np.random.default_rng(4)
    m, _ = planted(rng, n=60, V=80)
    s = aon.sample_equivalent(m, dim=m.d + 2, junk="adversarial", seed=5).model
    r = aon.paper_d_llv(m, s, seed=1, candidates=5)
    assert r.d_llv < 1e-9 and r.d_llv_worst < 1e-9
    assert len(r.candidates) == 5 and r.dim == min(m.d, m.n - 1)
    b = _perturbed(m, 0.1, rng)
    p = aon.paper_d_llv(m, b, seed=1, candidates=5, samples=4)
    full = aon.distances(m, b)
    summ = p.summary()
    assert 0 < p.d_llv <= p.d_llv_worst <= full.d_llv + 1e-12
    assert summ["label_terms_min"] <= summ["label_terms_median"] <= summ["label_terms_max"]
    assert summ["input_sets_tried"] == min(4, m.n // (p.dim + 1))
    assert "d_llv" in p.to_frame().attrs["identified"]
    with pytest.raises(aon.AllOrNoneError, match="left_out"):
        aon.paper_d_llv(m, b, pivot_token=3, left_out=3)
    with pytest.raises(aon.AllOrNoneError, match="input_sets"):
        aon.paper_d_llv(m, b, input_sets=[[1]])


def _reference_d_rep(a, b, n_pivots, combinations, seed):
    """``calculate_d_rep`` of the authors' code (bemigini/logit-distance-bounds-rep-sim) written
    out literally in numpy: the same draws, and its normalisation (each draw's sum over x
    divided by n x pivots x combinations, then the mean over the draws)."""
    rng = np.random.default_rng(seed)
    F1, F2, G1, G2 = a.F, b.F, a.G - a.G.mean(0), b.G - b.G.mean(0)
    V, d, n = G1.shape[0], G1.shape[1], F1.shape[0]
    idx = np.arange(V)
    vals = []
    for p in rng.choice(idx, n_pivots, replace=False):
        g1p, g2p = G1[idx == p], G2[idx == p]
        g1r, g2r = G1[idx != p], G2[idx != p]
        for _ in range(combinations):
            ch = rng.choice(range(V - 1), d, replace=False)
            A = np.linalg.inv(g1r[ch] - g1p) @ (g2r[ch] - g2p)
            r = ((F1 - (A @ F2[:, :, None])[:, :, 0]) ** 2).sum(axis=1)
            vals.append((r / (n * n_pivots * combinations)).sum())
    return float(np.mean(vals))


def _full_rank_pair(seed, scale):
    rng = np.random.default_rng(seed)
    a, _ = planted(rng, n=50, V=40, d=6, k=6, jf=0, jg=0)
    return a, _perturbed(a, scale, rng)


def test_d_logit_and_d_rep_equal_the_authors_definitions():
    a, b = _full_rank_pair(3, 0.05)
    r = aon.logit_distances(a, b, n_pivots=3, combinations=4, seed=7, block=16)
    La = a.logits(allow_large=True)
    Lb = b.logits(allow_large=True)
    La, Lb = La - La.mean(1, keepdims=True), Lb - Lb.mean(1, keepdims=True)
    assert r.d_logit_sq == pytest.approx(((La - Lb) ** 2).sum(1).mean(), rel=1e-10)
    ref = _reference_d_rep(a, b, 3, 4, seed=7)
    assert r.d_rep_sq_authors == pytest.approx(ref, rel=1e-9)
    assert r.d_rep_sq == pytest.approx(ref * 12, rel=1e-9)  # the authors divide twice
    assert len(r.per_draw) == 12 and r.d_rep == pytest.approx(np.sqrt(r.d_rep_sq))
    # fixed pivots and label sets: the same draws give the same value
    sets = r.label_sets.reshape(3, 4, a.d)
    f = aon.logit_distances(a, b, pivots=r.pivots, label_sets=sets)
    assert f.d_rep_sq == pytest.approx(r.d_rep_sq, rel=1e-12)
    one = aon.logit_distances(a, b, pivots=[0], label_sets=[[1, 2, 3, 4, 5, 6]])
    A = np.linalg.solve(a.G[1:7] - a.G[0], b.G[1:7] - b.G[0])
    assert one.d_rep_sq == pytest.approx(((a.F - b.F @ A.T) ** 2).sum(1).mean(), rel=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_d_logit_bounds_d_rep_on_planted_pairs(seed):
    for scale in (1e-3, 0.05, 0.5):
        a, b = _full_rank_pair(seed, scale)
        r = aon.logit_distances(a, b, n_pivots=4, combinations=3, seed=seed)
        assert 0 < r.d_rep_sq <= r.bound, (scale, r.d_rep_sq, r.bound)
    # equivalent models (any width, any junk): both 0
    m, _ = planted(np.random.default_rng(seed), n=50, V=40, d=6, k=6, jf=0, jg=0)
    s = aon.sample_equivalent(m, dim=9, junk="adversarial", seed=seed).model
    z = aon.logit_distances(m, s, n_pivots=3, combinations=2, seed=seed)
    assert z.d_logit_sq < 1e-18 and z.d_rep_sq < 1e-18 and z.d_b == 9


def test_logit_distances_bad_input_gets_one_line_errors():
    a, b = _full_rank_pair(0, 0.1)
    with pytest.raises(aon.AllOrNoneError, match="pivot"):
        aon.logit_distances(a, b, pivots=[1], label_sets=[[1, 2, 3, 4, 5, 6]])
    with pytest.raises(aon.AllOrNoneError, match="shape"):
        aon.logit_distances(a, b, pivots=[0], label_sets=[[1, 2, 3]])
    with pytest.raises(aon.AllOrNoneError, match="n_pivots"):
        aon.logit_distances(a, b, n_pivots=0)
    low, _ = planted(np.random.default_rng(1), n=50, V=40, d=8, k=4, jf=1, jg=1)
    with pytest.raises(aon.AllOrNoneError, match="span"):
        aon.logit_distances(low, low, n_pivots=1, combinations=1)


def test_study_pair_rows_get_the_papers_d_llv_d_logit_and_d_rep():
    from allornone.family.study import _pair_similarity

    m, _ = planted(np.random.default_rng(9), n=90, k=12, jf=0, jg=0)
    preds = {"a": m, "b": aon.sample_equivalent(m, junk="adversarial", seed=1).model}
    preds["c"] = _perturbed(m, 0.5, np.random.default_rng(2))
    sts = {k: aon.structure(p) for k, p in preds.items()}
    same = _pair_similarity(preds, sts, "a", "b", seed=0)
    assert same["d_llv_paper"] < 1e-9 and same["d_logit"] < 1e-9 and same["d_rep"] < 1e-9
    other = _pair_similarity(preds, sts, "a", "c", seed=0)
    assert 0 < other["d_llv_paper"] <= other["d_llv_paper_worst"]
    assert other["d_logit"] > 1e-3 and other["d_rep"] > 1e-3
    # a rank-deficient unembedding has no d_rep (reported as missing, not an error)
    low, _ = planted(np.random.default_rng(1), n=90, d=12, k=4, jf=1, jg=1)
    lp = {"a": low, "b": _perturbed(low, 0.1, np.random.default_rng(3))}
    row = _pair_similarity(lp, {k: aon.structure(p) for k, p in lp.items()}, "a", "b", seed=0)
    assert row["d_rep"] is None and row["d_llv_paper"] > 0
