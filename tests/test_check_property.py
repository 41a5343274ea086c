"""allornone.testing.check_property on every property (planted float64 models), and on
deliberately broken property functions, which it must reject with a clear AssertionError."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_properties_parallelism import _parallel_family
from test_properties_planted import random_planted
from test_properties_relational import _relation, _spec

from allornone import NextTokenPredictor, structure
from allornone.properties import (
    analogy_accuracy,
    context_parallelism,
    parallelism,
    probe,
    relational,
    steering,
    vector_from_contexts,
)
from allornone.testing import check_property, default_rtol

ROWS = np.arange(80)


def test_parallelism_condition_fails_and_identified_stats_hold():
    p, pairs = _parallel_family(k=4, d_w=2, V=30, seed=5)
    r = check_property(parallelism, pairs, p.model, baseline_draws=0, seeds=(0,))
    assert not r.all_or_none and r.raw["euclid_cos"] > 1 - 1e-12


def test_parallelism_with_M_full():
    p, pairs = _parallel_family(k=4, d_w=0, V=30, seed=8, d_u=3, d0=0)
    r = check_property(parallelism, pairs, p.model, baseline_draws=0, seeds=(0,))
    assert r.all_or_none


def test_context_parallelism():
    p = random_planted(seed=4)
    r = check_property(context_parallelism, [(0, 1), (2, 3), (4, 9)], p.model, baseline_draws=0)
    assert not r.all_or_none


def _probe_model(seed: int):
    return random_planted(n=100, V=40, k=4, d_u=2, d_w=2, seed=seed)


def test_probe_in_N_plus_M_perp_and_fitted_probe():
    p = _probe_model(3)
    m = p.model
    st = structure(m)
    rng = np.random.default_rng(0)
    perp = np.linalg.svd(st.M.T)[2][st.dim_M :].T
    w = st.N @ rng.standard_normal(st.dim_N) + perp @ rng.standard_normal(perp.shape[1])
    col = m.log_odds(ROWS, [3])[:, 0]
    y = (col > np.median(col)).astype(int)
    r = check_property(probe, y, m, rows=ROWS, weights=(w, 0.3), seeds=(0,))
    assert r.all_or_none
    check_property(probe, y, m, rows=ROWS, seeds=(0,), widths=("k+2", "d+1"))


def test_probe_reading_J_f():
    p = _probe_model(5)
    m = p.model
    w = np.linalg.solve(p.T.T, p.unit(p.k))  # reads the first f-junk coordinate
    y = (m.F[ROWS] @ w > 0).astype(int)
    r = check_property(probe, y, m, rows=ROWS, seeds=(0,), widths=("k+2", "d+1"))
    assert not r.all_or_none


def test_steering_transfers_and_J_g_breaks():
    p = random_planted(seed=7)
    m = p.model
    st = structure(m)
    v = vector_from_contexts(m, [0, 1, 2, 3], [4, 5, 6])
    perp = np.linalg.svd(st.N.T)[2][st.dim_N :].T
    v = v + perp @ np.random.default_rng(1).standard_normal(perp.shape[1])
    assert check_property(steering, v, m, alpha=2.5, targets=[0, 1, 2]).all_or_none
    jg = st.J_g[:, 0] + 0.3 * v
    assert not check_property(steering, jg, m, targets=[0, 1, 2]).all_or_none


def test_relational_under_and_without_the_condition():
    ok = _relation(0)
    r = check_property(relational, _spec(), ok.model, kl=True, seeds=(0,), widths=("k+2", "d+1"))
    assert r.all_or_none
    bad = _relation(1, reads_junk=True)
    r = check_property(relational, _spec(), bad.model, kl=False, seeds=(0,))
    assert not r.all_or_none


def _analogy_model(seed: int = 0):
    """Countries, capitals (country + one offset) and noise words; contexts are random."""
    rng = np.random.default_rng(seed)
    d, n_pairs = 12, 5
    E = np.linalg.qr(rng.standard_normal((d, d)))[0]
    countries = E[:, :n_pairs].T
    G = np.vstack([countries, countries + E[:, -1], 0.3 * rng.standard_normal((6, d))])
    m = NextTokenPredictor(rng.standard_normal((40, d)), G)
    n = range(n_pairs)
    qs = [(j, n_pairs + j, i, n_pairs + i) for i in n for j in n if i != j]
    return m, {"capitals": qs}


def test_analogies():
    m, qs = _analogy_model()
    r = check_property(analogy_accuracy, qs, m, seeds=(0,))
    assert r.raw["capitals"] == 1.0 and not r.all_or_none


# ---------------------------------------------------------------------- broken properties
def _raw_filed_as_identified(model, spec, **kw):
    r = parallelism(model, spec, **kw)
    return dataclasses.replace(r, identified={**r.identified, "euclid_cos": r.raw["euclid_cos"]})


_raw_filed_as_identified.__name__ = "raw_filed_as_identified"


def test_fails_on_a_raw_statistic_reported_as_identified():
    p, pairs = _parallel_family(k=4, d_w=2, V=30, seed=5)
    with pytest.raises(AssertionError, match=r"identified statistic 'euclid_cos' is not invariant"):
        check_property(_raw_filed_as_identified, pairs, p.model, baseline_draws=0, seeds=(0,))


def test_fails_on_a_false_all_or_none_verdict():
    p = random_planted(seed=7)
    jg = structure(p.model).J_g[:, 0]
    # a huge tolerance declares the J_g vector all-or-none: the transported shift differs
    with pytest.raises(AssertionError, match=r"all_or_none is True .* raw statistic"):
        check_property(steering, jg, p.model, targets=[0, 1, 2], tol=10.0, seeds=(0,))


def test_fails_when_the_condition_fails_but_nothing_breaks():
    p = random_planted(seed=7)
    v = vector_from_contexts(p.model, [0, 1, 2, 3], [4, 5, 6])  # always transfers
    # a negative tolerance declares it not all-or-none: no adversarial sample can break it
    with pytest.raises(AssertionError, match="no adversarial sample"):
        check_property(steering, v, p.model, targets=[0, 1, 2], tol=-1.0, seeds=(0,))


def test_fails_on_an_inconsistent_verdict_and_bad_input():
    p, pairs = _parallel_family(k=4, d_w=2, V=30, seed=5)

    def flipped(model, spec, **kw):
        r = parallelism(model, spec, **kw)
        return dataclasses.replace(r, all_or_none=not r.all_or_none)

    with pytest.raises(AssertionError, match="condition_size <= tol"):
        check_property(flipped, pairs, p.model, baseline_draws=0)
    with pytest.raises(TypeError, match="NextTokenPredictor"):
        check_property(parallelism, pairs, p.model.F)
    with pytest.raises(ValueError, match="junks"):
        check_property(parallelism, pairs, p.model, junks=("gaussian",))
    assert 0 < default_rtol(p.model) < 1e-5
