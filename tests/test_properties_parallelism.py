"""Parallelism (THEORY 5.1, 7.6): identified statistics are invariant; raw parallelism is
broken by adversarial junk when M != R^d and preserved (among diverse models) when M = R^d."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties_planted import JUNKS, close, dim_of, planted, random_planted, sample

from allornone import AllOrNoneError, equivalence, sample_equivalent, structure
from allornone.properties import (
    analogy_accuracy,
    context_parallelism,
    parallelism,
    parallelism_families,
)
from allornone.testing import check_property

M_PAIRS = 5


def _parallel_family(k: int, d_w: int, V: int, seed: int, d_u: int = 2, d0: int = 1, n: int = 60):
    """Planted model whose tokens (2i, 2i+1), i < M_PAIRS, differ by lam_i [delta; omega]."""
    rng = np.random.default_rng(seed)
    e_g = rng.standard_normal((V, k))
    w = rng.standard_normal((V, d_w))
    delta, omega = rng.standard_normal(k), rng.standard_normal(d_w)
    lam = rng.uniform(0.5, 2.0, M_PAIRS)
    for i in range(M_PAIRS):
        e_g[2 * i + 1] = e_g[2 * i] + lam[i] * delta
        w[2 * i + 1] = w[2 * i] + lam[i] * omega
    p = planted(rng.standard_normal((n, k)), e_g, rng.standard_normal((n, d_u)), w, d0, seed)
    pairs = [(2 * i, 2 * i + 1) for i in range(M_PAIRS)]
    return p, pairs


def test_logodds_corr_is_correlation_of_logratio_columns():
    p = random_planted(seed=1)
    m = p.model
    pairs = [(0, 1), (2, 5), (7, 3), (9, 11)]
    r = parallelism(m, pairs, baseline_draws=0)
    L = m.log_odds()
    cols = np.stack([L[:, b] - L[:, a] for a, b in pairs], axis=1)
    assert np.allclose(r.details["logodds_corr"], np.corrcoef(cols.T), atol=1e-12)
    # Sigma_f cosine, explicitly
    D = np.stack([m.G[b] - m.G[a] for a, b in pairs])
    S = np.cov(m.F.T)
    Q = D @ S @ D.T
    assert np.allclose(r.details["logodds_corr"], Q / np.sqrt(np.outer(np.diag(Q), np.diag(Q))))
    # best lambda and its relative residual, explicitly
    lam = cols[:, 0] @ cols[:, 1] / (cols[:, 1] @ cols[:, 1])
    res = np.linalg.norm(cols[:, 0] - lam * cols[:, 1]) / np.linalg.norm(cols[:, 0])
    assert np.isclose(r.details["logratio_lambda"][0, 1], lam)
    assert np.isclose(r.details["logratio_residual"][0, 1], res)
    # labels work the same as indices
    r2 = parallelism(m, [(f"t{a}", f"t{b}") for a, b in pairs], baseline_draws=0)
    assert close(r2.identified["logodds_corr"], r.identified["logodds_corr"], 1e-14, 0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    width=st.sampled_from(["k+2", "d-1", "d+2", "d+4"]),
    junk=st.sampled_from(JUNKS),
)
def test_identified_parallelism_is_invariant_and_witness_transports(seed, width, junk):
    p = random_planted(seed=seed % 97)
    m = p.model
    pairs = [(0, 1), (2, 3), (4, 7), (9, 5), (12, 20)]
    r = parallelism(m, pairs, baseline_draws=3, seed=1)
    m2, eq = sample(m, dim_of(width, p.k, p.d), seed, junk)
    r2 = parallelism(m2, pairs, baseline_draws=3, seed=1)
    for key in r.identified:
        assert close(r2.identified[key], r.identified[key]), key
        assert close(r2.baseline[key], r.baseline[key]), key
    # transported concept direction gives the same log-ratio column F D in the new model
    v = r.transport(eq)
    w = r.witness.vector
    assert np.allclose(m2.F @ v, m.F @ w, rtol=0, atol=1e-9 * np.abs(m.F @ w).max())


def test_raw_parallelism_broken_when_M_is_not_full():
    p, pairs = _parallel_family(k=4, d_w=2, V=30, seed=5)
    m = p.model
    r = parallelism(m, pairs)
    assert structure(m).dim_M < m.d and not r.all_or_none
    assert r.condition_size > 1e-3
    assert r.raw["euclid_cos"] > 1 - 1e-12  # exactly parallel here
    assert r.identified["logodds_corr"] > 1 - 1e-12 and r.identified["logratio_residual"] < 1e-6
    assert r.identified["logodds_corr"] > r.baseline["logodds_corr"] + 0.3  # above chance
    for seed in range(3):
        m2, _ = sample(m, m.d + seed, seed, "adversarial")
        r2 = parallelism(m2, pairs)
        assert r2.raw["euclid_cos"] < 0.9  # parallelism is gone in coordinates ...
        assert close(r2.identified["logodds_corr"], r.identified["logodds_corr"])  # ... not here


@pytest.mark.parametrize("extra", [0, 2])
def test_raw_parallelism_preserved_when_M_is_full(extra):
    # d = k + d_u: M = R^d, no unembedding junk
    p, pairs = _parallel_family(k=4, d_w=0, V=30, seed=8, d_u=3, d0=0)
    m = p.model
    r = parallelism(m, pairs)
    assert structure(m).dim_M == m.d and r.all_or_none and r.condition_size < 1e-12
    for seed, junk in enumerate(["random", "shuffle", "random"]):
        dim = m.d + extra
        s = sample_equivalent(m, dim=dim, seed=seed, junk=junk, junk_dims=(dim - 4, 0))
        assert equivalence(m, s.model).equivalent
        if junk == "random":
            assert structure(s.model).dim_M == dim  # an equivalent model with M = R^d
        r2 = parallelism(s.model, pairs)
        assert r2.raw["euclid_cos"] > 1 - 1e-9


def test_causal_inner_product_raw_vs_identified():
    p = random_planted(seed=11)
    m = p.model
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7)]
    # identified statistics (causal_cos included) invariant under every junk mode; raw ones
    # broken by adversarial junk (M != R^d here)
    r = check_property(parallelism, pairs, m, baseline_draws=0, seeds=(0, 1), widths=("d+1",))
    assert not r.all_or_none
    m2, _ = sample(m, m.d + 1, 0, "adversarial")
    r2 = parallelism(m2, pairs, baseline_draws=0)
    assert abs(r2.raw["causal_cos_raw"] - r.raw["causal_cos_raw"]) > 1e-3  # not identified


def test_families_and_exclusions():
    p, pairs = _parallel_family(k=4, d_w=2, V=30, seed=2)
    m = p.model
    out = parallelism_families(
        m, {"planted": pairs + [(3, 3), ("t0", "nope"), pairs[0]], "random": [(20, 21), (22, 29)]}
    )
    assert set(out) == {"planted", "random"}
    reasons = [e["reason"] for e in out["planted"].excluded]
    assert any("identical" in x for x in reasons) and any("not found" in x for x in reasons)
    assert any("repeated" in x for x in reasons)
    assert out["planted"].identified["logodds_corr"] > out["random"].identified["logodds_corr"]
    assert out["planted"].to_dict()["property"] == "parallelism"
    with pytest.raises(AllOrNoneError, match="at least 2 valid pairs"):
        parallelism(m, [(1, 1), (2, 3)])
    with pytest.raises(AllOrNoneError, match="empty"):
        parallelism_families(m, {})


def test_context_parallelism_mirror():
    rng = np.random.default_rng(4)
    k, d_u, n, V = 4, 2, 50, 30
    e_f, u = rng.standard_normal((n, k)), rng.standard_normal((n, d_u))
    delta, mu = rng.standard_normal(k), rng.standard_normal(d_u)
    pairs = []
    for i in range(5):
        lam = rng.uniform(0.5, 2)
        e_f[2 * i + 1] = e_f[2 * i] + lam * delta
        u[2 * i + 1] = u[2 * i] + lam * mu
        pairs.append((2 * i, 2 * i + 1))
    p = planted(e_f, rng.standard_normal((V, k)), u, rng.standard_normal((V, 2)), 1, 4)
    m = p.model
    r = context_parallelism(m, pairs)
    assert not r.all_or_none and r.raw["euclid_cos"] > 1 - 1e-12
    assert r.identified["logodds_corr"] > 1 - 1e-12
    L = m.log_odds()
    rows = np.stack([L[b] - L[a] for a, b in pairs])
    assert np.allclose(r.details["logodds_corr"], np.corrcoef(rows), atol=1e-12)
    for seed in range(2):
        m2, eq = sample(m, m.d + 1, seed, "adversarial")
        r2 = context_parallelism(m2, pairs)
        assert r2.raw["euclid_cos"] < 0.9
        for key in r.identified:
            assert close(r2.identified[key], r.identified[key]), key
        v = r.transport(eq)  # f-side direction: same rows of L
        assert np.allclose(m2.G0() @ v, m.G0() @ r.witness.vector, atol=1e-9)


def test_analogy_accuracy_planted():
    rng = np.random.default_rng(0)
    d, n_pairs, n_other = 60, 8, 30
    E = np.linalg.qr(rng.standard_normal((d, d)))[0]
    offset = E[:, -1]
    countries = E[:, :n_pairs].T
    capitals = countries + offset
    other = 0.3 * rng.standard_normal((n_other, d))
    G = np.vstack([countries, capitals, other])
    qs = [
        (j, n_pairs + j, i, n_pairs + i) for i in range(n_pairs) for j in range(n_pairs) if i != j
    ]
    from allornone import NextTokenPredictor

    m = NextTokenPredictor(rng.standard_normal((3, d)), G, tokens=[f"w{i}" for i in range(len(G))])
    res = analogy_accuracy(m, {"capitals": qs, "wrong": [(0, 1, 2, 3)]})
    assert res.raw["capitals"] == 1.0 and res.details["counts"]["capitals"] == len(qs)
    assert res.raw["wrong"] == 0.0
    assert res.property == "analogy" and not res.all_or_none and set(res.identified) == set(res.raw)
    # labels; an unknown word is excluded
    res2 = analogy_accuracy(m, [("w0", "w8", "w1", "w9"), ("w0", "w8", "zz", "w9")])
    assert res2.raw["all"] == 1.0 and len(res2.excluded) == 1
    with pytest.raises(AllOrNoneError):
        analogy_accuracy(m, [])
    with pytest.raises(TypeError, match="NextTokenPredictor"):
        analogy_accuracy(G, qs)
