"""Memory at vocabulary scale: float32 factors are kept, subsets share G, equality is a hash.

The audit once copied the whole V x d unembedding in float64 for every ``subset`` (1.09 GB
at V = 152k); these tests pin the behaviour that replaced it and check that the results do
not depend on the storage dtype.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from planted import planted

import allornone as aon


def _f32_model(rng, n=40, V=300, d=16):
    F = rng.standard_normal((n, d)).astype(np.float32)
    G = rng.standard_normal((V, d)).astype(np.float32)
    return F, G


def test_float32_factors_are_kept_in_place_and_float64_ones_too():
    rng = np.random.default_rng(0)
    F, G = _f32_model(rng)
    P = aon.NextTokenPredictor(F, G)
    assert P.dtype == np.float32 and P.F.dtype == np.float32
    assert np.shares_memory(P.G, G) and np.shares_memory(P.F, F)
    P64 = aon.NextTokenPredictor(F.astype(np.float64), G.astype(np.float64))
    assert P64.dtype == np.float64
    # float64 F beside float32 G (what the audit builds): G is kept float32, not copied
    mixed = aon.NextTokenPredictor(F.astype(np.float64), G)
    assert mixed.F.dtype == np.float64 and mixed.G.dtype == np.float32
    assert np.shares_memory(mixed.G, G) and mixed.dtype == np.float32
    assert mixed.eps == pytest.approx(np.finfo(np.float32).eps)
    # float64 G: F is promoted (n x d, cheap), so no product mixes a float64 G with float32
    promoted = aon.NextTokenPredictor(F, G.astype(np.float64))
    assert promoted.F.dtype == promoted.G.dtype == np.float64


def test_cpu_torch_float32_tensor_is_not_copied_and_bfloat16_is_exact():
    rng = np.random.default_rng(1)
    F, G = _f32_model(rng)
    tG = torch.from_numpy(G)
    P = aon.NextTokenPredictor(torch.from_numpy(F), tG)
    assert np.shares_memory(P.G, G)
    B = aon.NextTokenPredictor(torch.from_numpy(F).bfloat16(), tG.bfloat16())
    assert B.dtype == np.float32 and B.eps == pytest.approx(2.0**-7)
    assert np.array_equal(B.G, tG.bfloat16().float().numpy())


def test_float32_bias_is_absorbed_in_float32_and_float64_bias_promotes():
    rng = np.random.default_rng(2)
    F, G = _f32_model(rng)
    b32 = rng.standard_normal(G.shape[0]).astype(np.float32)
    P = aon.NextTokenPredictor(F, G, bias=b32)
    assert P.dtype == np.float32 and P.d == G.shape[1] + 1
    Q = aon.NextTokenPredictor(F, G, bias=b32.astype(np.float64) + 1e-9)
    assert Q.dtype == np.float64


def test_non_finite_float32_input_is_refused_with_its_position():
    G = np.ones((10_000, 3), dtype=np.float32)
    G[9_000, 2] = np.nan
    with pytest.raises(aon.AllOrNoneError, match=r"G has 1 non-finite.*\(9000, 2\)"):
        aon.NextTokenPredictor(np.ones((2, 3), dtype=np.float32), G)


def test_results_do_not_depend_on_the_storage_dtype():
    """Every product is formed in float64: a float32 model and its exact float64 copy agree
    to float64 rounding (structure, log-odds, log-normaliser, equivalence)."""
    rng = np.random.default_rng(3)
    model, _ = planted(rng, n=60, V=9000, d=12, k=4, jf=2, jg=3)
    F32, G32 = model.F.astype(np.float32), model.G.astype(np.float32)
    a = aon.NextTokenPredictor(F32, G32)
    b = aon.NextTokenPredictor(F32.astype(np.float64), G32.astype(np.float64))
    b.eps = a.eps  # same source precision
    sa, sb = aon.structure(a), aon.structure(b)
    assert sa.k == sb.k == 4
    np.testing.assert_allclose(sa.singular_values, sb.singular_values, rtol=1e-12)
    np.testing.assert_allclose(sa.e_g, sb.e_g, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sa.e_f, sb.e_f, rtol=1e-10, atol=1e-12)
    lo_a, lo_b = a.log_odds(rows=[0, 5]), b.log_odds(rows=[0, 5])
    assert lo_a.dtype == np.float64
    np.testing.assert_allclose(lo_a, lo_b, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(a.log_normalizer(), b.log_normalizer(), rtol=1e-13)
    np.testing.assert_allclose(a.g_mean, b.g_mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(a.G0_matmul(np.eye(12)), b.G0(), rtol=1e-13, atol=1e-13)
    assert aon.equivalence(a, b).equivalent


def test_subset_shares_G_and_its_caches():
    rng = np.random.default_rng(4)
    F, G = _f32_model(rng)
    P = aon.NextTokenPredictor(F, G, tokens=[f"t{i}" for i in range(G.shape[0])])
    _ = P.g_mean
    S = P.subset(rows=[0, 3, 7])
    assert S.G is P.G and np.shares_memory(S.G, G)
    assert S.g_mean is P.g_mean and S.tokens is P.tokens and S.n == 3
    assert P.subset(cols=None).F is P.F
    C = P.subset(cols=[1, 2, 5])
    assert not np.shares_memory(C.G, P.G) and C.V == 3
    np.testing.assert_array_equal(C.G, G[[1, 2, 5]])


def test_same_G_is_exact_and_cheap():
    rng = np.random.default_rng(5)
    F, G = _f32_model(rng, V=5000)
    P = aon.NextTokenPredictor(F, G)
    assert P.same_G(P.subset(rows=[1, 2]))
    assert P.same_G(aon.NextTokenPredictor(F, G.copy()))  # equal content, other memory
    G2 = G.copy()
    G2[4999 - 1, 3] += 1e-3  # a row the strided sample skips: the full hash catches it
    assert not P.same_G(aon.NextTokenPredictor(F, G2))
    assert not P.same_G(aon.NextTokenPredictor(F, G.astype(np.float64)))
    assert not P.same_G(aon.NextTokenPredictor(F, G[:-1]))
    assert not P.same_G("not a model")  # type: ignore[arg-type]


def test_subset_and_structure_memory_stays_below_one_copy_of_G():
    """tracemalloc peaks on V = 200,000 float32 tokens, relative to V x d x 4 bytes (the old
    float64 subset alone took 2x that): subset + structure < 8%, a (2, V) log-odds block
    < 15% (its own output is 3%), equivalence (one streamed pass, two threads) < 35%."""
    rng = np.random.default_rng(6)
    V, d, n = 200_000, 128, 50
    F = rng.standard_normal((n, d)).astype(np.float32)
    G = rng.standard_normal((V, d)).astype(np.float32)
    size = V * d * 4
    peaks = {}
    tracemalloc.start()
    try:
        P = aon.NextTokenPredictor(F, G)
        S = P.subset(rows=list(range(0, n, 2)))
        st = aon.structure(S)
        peaks["structure"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        lo = S.log_odds(rows=[0, 1])
        peaks["log_odds"] = tracemalloc.get_traced_memory()[1]
        del lo
        tracemalloc.reset_peak()
        eq = aon.equivalence(S, S.subset(rows=None))
        peaks["equivalence"] = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert st.k == S.n == 25 and eq.equivalent
    frac = {k: v / size for k, v in peaks.items()}
    assert frac["structure"] < 0.08, frac
    assert frac["log_odds"] < 0.15, frac
    assert frac["equivalence"] < 0.35, frac


def test_analogy_accuracy_streams_the_vocabulary():
    """3CosAdd, raw and identified, at V = 200,000 (r = d = 128): peak below one float32
    copy of G, half of one float64 copy (the identified rows were a V x r float64 array, and
    the unit rows a copy of each form: 3x that); what remains is a few blocks of 8192 rows."""
    rng = np.random.default_rng(7)
    V, d, n = 200_000, 128, 300
    F = rng.standard_normal((n, d))  # float64 F beside a float32 G, as in the audit
    G = rng.standard_normal((V, d)).astype(np.float32)
    P = aon.NextTokenPredictor(F, G)
    qs = {"a": rng.integers(0, V, (40, 4)).tolist(), "b": rng.integers(0, V, (30, 4)).tolist()}
    tracemalloc.start()
    try:
        r = aon.properties.analogy_accuracy(P, qs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.details["counts"]["overall"] == 70
    assert peak < 1.0 * G.nbytes, peak / G.nbytes


def test_audit_never_copies_G_in_float64():
    """The whole quick audit of a model with a float32 V = 60,000 x 128 head (F extracted
    in float32, cast to float64 by the audit): the traced peak stays below 1.5x G in float32,
    0.75 of one float64 copy of G (the audit once made one for its predictor and more per
    subset and product). About 0.9x is measured: token labels and fixed-size blocks."""
    from audit_helpers import CONCEPTS, LABELS, RELATIONS, tiny_model

    from allornone.audit import AuditConfig, run_audit

    V, d = 60_000, 128
    m = tiny_model(d=d)
    extra = V - m.V
    rng = np.random.default_rng(8)
    m._G = np.vstack([m._G, rng.standard_normal((extra, d))]).astype(np.float32)
    m.tokens = m.tokens + [f"<x{i}>" for i in range(extra)]
    m.V = V
    embed = m.embed
    m.embed = lambda texts, batch_size=None, progress=None: embed(texts).astype(np.float32)
    cfg = AuditConfig(
        concepts=str(CONCEPTS),
        relations=str(RELATIONS),
        labels=str(LABELS),
        progress=False,
        quick=True,
    )
    tracemalloc.start()
    try:
        res = run_audit(cfg, model=m)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.properties and res.equivalence_demo is not None
    assert peak < 1.5 * m._G.nbytes, peak / m._G.nbytes
