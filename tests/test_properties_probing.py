"""Probing (THEORY 5.3, 7.4): probes in N + M_S^perp transfer with identical scores; probes
reading J_f are broken by an adversarial equivalent model; the log-odds probe is identified."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties_planted import JUNKS, dim_of, planted, random_planted, sample

from allornone import AllOrNoneError, structure
from allornone.properties import probe, probe_scores_residual
from allornone.testing import check_property

ROWS = np.arange(80)


def _model(seed: int):
    return random_planted(n=100, V=40, k=4, d_u=2, d_w=2, seed=seed)


def _identified_labels(p):
    """Labels read off the identified part: sign of a log-odds column (centred)."""
    col = p.model.log_odds(ROWS, [3])[:, 0]
    return (col > np.median(col)).astype(int)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    width=st.sampled_from(["k+2", "d-1", "d+2", "d+4"]),
    junk=st.sampled_from(JUNKS),
)
def test_probe_in_N_plus_MS_perp_transfers(seed, width, junk):
    p = _model(seed % 83)
    m = p.model
    rng = np.random.default_rng(seed)
    st_ = structure(m)
    perp = np.linalg.svd(st_.M.T)[2][st_.dim_M :].T  # M^perp (subset of M_S^perp)
    w = st_.N @ rng.standard_normal(st_.dim_N) + perp @ rng.standard_normal(perp.shape[1])
    y = _identified_labels(p)
    r = probe(m, y, rows=ROWS, weights=(w, 0.3))
    assert r.all_or_none and r.condition_size < 1e-10
    m2, eq = sample(m, dim_of(width, p.k, p.d), seed, junk)
    tp = r.transport(eq)
    s1 = r.details["scores"]
    assert np.allclose(tp.scores(m2.F[ROWS]), s1, rtol=0, atol=1e-9 * np.abs(s1).max())
    r2 = probe(m2, y, rows=ROWS, weights=(tp.W, tp.b))
    assert r2.all_or_none
    for key in r.raw:
        assert r2.raw[key] == r.raw[key], key


def test_logodds_probe_is_identified():
    p = _model(1)
    m = p.model
    y = _identified_labels(p)
    # every junk mode, widths k+2 and d+3: the log-odds probe's accuracies do not move
    r = check_property(probe, y, m, rows=ROWS, seeds=(0,), widths=("k+2", "d+3"))
    assert r.identified["logodds_test_accuracy"] > 0.7
    m2, _ = sample(m, dim_of("d+3", p.k, p.d), 1, "adversarial")
    s, s2 = r.details["logodds_scores"], probe(m2, y, rows=ROWS).details["logodds_scores"]
    assert np.allclose(s2, s, atol=1e-6 * np.abs(s).max())


def test_fitted_probe_transfers_when_subjects_have_no_junk():
    # f-junk only on contexts outside S: M_S cap N^perp = 0, so every probe on S transfers
    # (the condition uses M_S, not M)
    rng = np.random.default_rng(2)
    n, k = 100, 4
    u = rng.standard_normal((n, 2))
    u[ROWS] = 0.0
    p = planted(
        rng.standard_normal((n, k)), rng.standard_normal((40, k)), u, rng.standard_normal((40, 2))
    )
    m = p.model
    assert structure(m).dim_J_f == 2
    y = (m.F[ROWS] @ rng.standard_normal(p.d) > 0).astype(int)
    r = probe(m, y, rows=ROWS)
    assert r.all_or_none and r.raw["train_accuracy"] > 0.9
    m2, eq = sample(m, p.d + 2, 0, "adversarial")
    tp = r.transport(eq)
    s = r.details["scores"]
    assert np.allclose(tp.scores(m2.F[ROWS]), s, atol=1e-9 * np.abs(s).max())


@pytest.mark.parametrize("kind", ["logistic", "mean_diff"])
def test_probe_reading_J_f_is_broken(kind):
    p = _model(5)
    m = p.model
    w = np.linalg.solve(p.T.T, p.unit(p.k))  # f(x)^T w = u_1(x), the first f-junk coordinate
    assert np.abs(m.G0() @ p.f_dir(p.unit(p.k))).max() < 1e-9  # that coordinate is junk
    y = (m.F[ROWS] @ w > 0).astype(int)
    r = probe(m, y, rows=ROWS, kind=kind)
    assert not r.all_or_none and r.condition_size > 0.5
    assert r.raw["train_accuracy"] > 0.85
    assert r.identified["logodds_train_accuracy"] < 0.8  # the distribution cannot tell
    scores = r.details["scores"]
    for seed in range(3):
        m2, eq = sample(m, p.d + seed, seed, "adversarial")
        # no linear probe on f~ reproduces the scores
        assert probe_scores_residual(m2.F[ROWS], scores) > 0.5
        tp = r.transport(eq)
        assert np.linalg.norm(tp.scores(m2.F[ROWS]) - scores) > 0.5 * np.linalg.norm(
            scores - scores.mean()
        )


def test_multiclass_and_validation():
    p = _model(7)
    m = p.model
    rng = np.random.default_rng(0)
    Wt = rng.standard_normal((3, p.d))
    y = np.array(["a", "b", "c"])[(m.F[ROWS] @ Wt.T).argmax(axis=1)]
    for kind in ("logistic", "mean_diff"):
        r = probe(m, list(y), rows=ROWS, kind=kind)
        assert r.details["probe_W"].shape == (3, p.d) and r.details["classes"] == ["a", "b", "c"]
        assert r.raw["train_accuracy"] > 0.6
    with pytest.raises(AllOrNoneError, match="single class"):
        probe(m, [1] * len(ROWS), rows=ROWS)
    with pytest.raises(AllOrNoneError, match="at least 4"):
        probe(m, [0, 1, 0], rows=[0, 1, 2])
    with pytest.raises(AllOrNoneError, match="entries"):
        probe(m, [0, 1], rows=ROWS)
    with pytest.raises(AllOrNoneError, match="kind"):
        probe(m, [0, 1] * 40, rows=ROWS, kind="svm")
    with pytest.raises(AllOrNoneError, match="shape"):
        probe(m, [0, 1] * 40, rows=ROWS, weights=(np.ones(3), 0.0))
    r = probe(m, [0] * 79 + [1], rows=ROWS)
    assert r.excluded and "single example" in r.excluded[0]["reason"]
