"""Park et al.'s causal-inner-product protocol (ICML 2024, sec. 4 and their ``1_subspace``
notebook), reproduced by an independent implementation written here from the paper.

Their recipe, on the unembedding matrix ``gamma`` (V x d):

1. ``Cov(gamma)`` = centred ``gamma^T gamma / V``; ``g = gamma Cov^{-1/2}`` (symmetric root);
2. a concept's differences ``g(target) - g(base)``; for each pair, the unit mean of the *other*
   pairs' differences is its leave-one-out direction, and the pair's projection on it is
   recorded;
3. random token pairs ``g(i) - g(j)`` (uniform, with replacement) projected on the unit mean of
   all pairs are the null; the histograms of 2 against 3 are their figure.

The library's :func:`allornone.parallelism` reports the same on raw ``g``
(``details["causal_loo_raw"]``, ``raw["causal_loo_auc_raw"]``) and on the effective
unembeddings (``identified["causal_loo_auc"]``). The reference below uses eigendecomposition
and explicit loops (the library whitens by an SVD of a QR factor and vectorises), and the
null over *all* V^2 ordered pairs, exactly, where the library samples 100,000.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_properties_planted import planted, sample

from allornone import NextTokenPredictor, equivalence, structure
from allornone.properties import parallelism


# ------------------------------------------------------------------ the independent reference
def park_g(gamma: np.ndarray) -> np.ndarray:
    """Step 1: ``g = gamma Cov(gamma)^{-1/2}``, Cov normalised by V. Park et al. assume full
    rank; where Cov is singular (an equivalent model with junk) the pseudo-inverse root."""
    centred = gamma - gamma.mean(axis=0)
    cov = centred.T @ centred / gamma.shape[0]
    vals, vecs = np.linalg.eigh(cov)
    keep = vals > 1e-12 * vals.max()
    root = np.zeros_like(vals)
    root[keep] = vals[keep] ** -0.5
    return gamma @ (vecs @ np.diag(root) @ vecs.T)


def park_loo(g: np.ndarray, base: list[int], target: list[int]) -> np.ndarray:
    """Step 2: leave-one-out projections, one pair at a time."""
    diff = g[target] - g[base]
    out = []
    for i in range(len(diff)):
        rest = np.delete(diff, i, axis=0).mean(axis=0)
        out.append(rest / np.linalg.norm(rest) @ diff[i])
    return np.array(out)


def park_null_auc(g: np.ndarray, base: list[int], target: list[int], loo: np.ndarray):
    """Step 3 over every ordered token pair: the exact share of (held-out pair, random pair)
    comparisons the held-out pair wins (ties 1/2), and the null's mean and std."""
    diff = g[target] - g[base]
    concept = diff.mean(axis=0)
    concept /= np.linalg.norm(concept)
    s = g @ concept
    null = (s[:, None] - s[None, :]).ravel()
    wins = [(np.sum(null < x) + 0.5 * np.sum(null == x)) / null.size for x in loo]
    return float(np.mean(wins)), float(null.mean()), float(null.std())


# ------------------------------------------------------------------ fixtures
def _concept_model(seed: int, d: int = 6, V: int = 80, n: int = 60, m: int = 12, noise=0.3):
    """A full-rank model whose pairs (2i, 2i+1) share a direction, plus noise."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((V, d))
    delta = rng.standard_normal(d)
    for i in range(m):
        G[2 * i + 1] = G[2 * i] + rng.uniform(0.5, 1.5) * delta + noise * rng.standard_normal(d)
    F = rng.standard_normal((n, d))
    return NextTokenPredictor(F, G), [(2 * i, 2 * i + 1) for i in range(m)]


# ------------------------------------------------------------------ the tests
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loo_projections_equal_the_reference_on_raw_g(seed):
    model, pairs = _concept_model(seed)
    r = parallelism(model, pairs, baseline_draws=0)
    base, target = [a for a, _ in pairs], [b for _, b in pairs]
    ref = park_loo(park_g(model.G), base, target)
    got = r.details["causal_loo_raw"]["loo_projection"]
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    # here M = R^d (full-rank contexts and vocabulary): the effective coordinates are a linear
    # image of g, and the causal inner product does not see the change of basis
    np.testing.assert_allclose(r.details["causal_loo"]["loo_projection"], ref, rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 3])
def test_random_pair_null_and_auc_match_the_exact_reference(seed):
    model, pairs = _concept_model(seed)
    r = parallelism(model, pairs, baseline_draws=0)
    base, target = [a for a, _ in pairs], [b for _, b in pairs]
    g = park_g(model.G)
    auc, mean, std = park_null_auc(g, base, target, park_loo(g, base, target))
    loo = r.details["causal_loo_raw"]
    # the library samples 100,000 of the V^2 = 6,400 ordered pairs: Monte Carlo error of the
    # share is at most 0.5 / sqrt(1e5) = 0.0016 per pair; 5 sigma
    assert abs(loo["auc"] - auc) < 5 * 0.0016
    assert abs(r.raw["causal_loo_auc_raw"] - auc) < 5 * 0.0016
    assert abs(loo["random_mean"] - mean) < 5 * std / np.sqrt(1e5)
    assert loo["random_std"] == pytest.approx(std, rel=0.02)
    assert auc > 0.85  # the planted concept beats random pairs, as in Park et al.'s figure


def test_unrelated_pairs_are_at_chance():
    rng = np.random.default_rng(5)
    model = NextTokenPredictor(rng.standard_normal((60, 6)), rng.standard_normal((400, 6)))
    pairs = [(int(a), int(b)) for a, b in rng.choice(400, size=(40, 2), replace=False)]
    r = parallelism(model, pairs, baseline_draws=0)
    g = park_g(model.G)
    base, target = [a for a, _ in pairs], [b for _, b in pairs]
    auc, _, _ = park_null_auc(g, base, target, park_loo(g, base, target))
    assert abs(r.raw["causal_loo_auc_raw"] - auc) < 0.01
    assert 0.3 < auc < 0.7  # no concept: held-out pairs look like random ones


def test_identified_form_is_invariant_where_parks_raw_form_is_not():
    """When M != R^d an equivalent model can move raw g outside M at will: Park's figure on raw
    g changes, the same protocol on the effective unembeddings does not."""
    rng = np.random.default_rng(7)
    k, d_w, V, n, m = 4, 2, 60, 40, 10
    e_g = rng.standard_normal((V, k))
    delta = rng.standard_normal(k)
    for i in range(m):
        e_g[2 * i + 1] = e_g[2 * i] + rng.uniform(0.5, 1.5) * delta + 0.2 * rng.standard_normal(k)
    p = planted(rng.standard_normal((n, k)), e_g, np.zeros((n, 0)), rng.standard_normal((V, d_w)))
    base_model = p.model
    assert structure(base_model).dim_M < base_model.d
    pairs = [(2 * i, 2 * i + 1) for i in range(m)]
    r = parallelism(base_model, pairs, baseline_draws=0)
    moved = []
    for seed in range(3):
        m2, _ = sample(base_model, base_model.d + 1, seed, "adversarial")
        assert equivalence(base_model, m2).equivalent
        r2 = parallelism(m2, pairs, baseline_draws=0)
        np.testing.assert_allclose(
            r2.details["causal_loo"]["loo_projection"],
            r.details["causal_loo"]["loo_projection"],
            rtol=1e-8,
        )
        assert r2.identified["causal_loo_auc"] == pytest.approx(
            r.identified["causal_loo_auc"], abs=1e-12
        )
        # Park's protocol on the raw g of the equivalent model, by the reference
        ref = park_loo(park_g(m2.G), [a for a, _ in pairs], [b for _, b in pairs])
        np.testing.assert_allclose(r2.details["causal_loo_raw"]["loo_projection"], ref, rtol=1e-8)
        moved.append(np.max(np.abs(ref - r.details["causal_loo_raw"]["loo_projection"])))
    assert max(moved) > 1e-3  # the raw figure is a property of the parametrisation


def test_skipped_on_request_and_reported_in_the_frame():
    model, pairs = _concept_model(0)
    r0 = parallelism(model, pairs, baseline_draws=0, random_pairs=0)
    assert "causal_loo_auc" not in r0.identified and "causal_loo" not in r0.details
    r = parallelism(model, pairs, baseline_draws=2)
    assert 0 <= r.baseline["causal_loo_auc"] <= 1  # random families: the chance level
    df = r.to_frame()
    assert df["identified.causal_loo_auc"].mean() == pytest.approx(r.identified["causal_loo_auc"])
    assert "raw.causal_loo_projection_raw" in df.columns
