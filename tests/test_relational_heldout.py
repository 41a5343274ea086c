"""Relational linearity reports held-out counts and bootstrap intervals, and says "too few
subjects to decide" below MIN_HELD_OUT held-out subjects (planted models)."""

from __future__ import annotations

import numpy as np
from test_properties_relational import N_S, _relation, _spec

from allornone.properties import relational
from allornone.properties.fitting import bootstrap_ci
from allornone.properties.relational import MIN_HELD_OUT


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_n() -> None:
    rng = np.random.default_rng(0)
    small = (rng.random(10) < 0.7).astype(float)
    big = (rng.random(1000) < 0.7).astype(float)
    lo, hi = bootstrap_ci(small)
    assert lo <= small.mean() <= hi and hi - lo > 0.3
    lo2, hi2 = bootstrap_ci(big)
    assert lo2 <= big.mean() <= hi2 and hi2 - lo2 < 0.1
    assert bootstrap_ci(np.ones(5)) == (1.0, 1.0)
    assert all(np.isnan(bootstrap_ci(np.zeros(0))))


def test_held_out_counts_and_decision() -> None:
    p = _relation(0)
    many = relational(p.model, _spec(), seed=0, kl=False)
    d = many.details
    assert d["n_train"] + d["n_test"] == N_S and d["n_test"] == 10 >= MIN_HELD_OUT
    assert d["decided"] is True and "note" not in d
    lo, hi = d["ci"]["dist_faithfulness"]
    assert lo <= many.identified["dist_faithfulness"] <= hi
    few = relational(p.model, _spec(n=12), seed=0, kl=False)
    assert few.details["n_test"] == 3 and few.details["decided"] is False
    assert few.details["note"].startswith("too few subjects to decide: 3 held out")
    assert set(few.details["ci"]) == {"refined_faithfulness", "dist_faithfulness"}


def test_a_relation_answered_by_one_constant_is_not_decided() -> None:
    """Issue 27: when the model gives (nearly) the same answer to every subject, a
    faithfulness of 1 is trivial; the majority-answer baseline is reported beside it and the
    relation is decided only when the interval is above that baseline."""
    p = _relation(0)
    r = relational(p.model, _spec(), seed=0, kl=False)
    assert 0.0 <= r.baseline["majority_answer"] <= 1.0
    assert r.details["beats_majority"] is (
        r.details["ci"]["dist_faithfulness"][0] > r.baseline["majority_answer"]
    )
    # every subject's answer made the same token: the constant map is as faithful as any
    import numpy as np

    m = p.model
    spec = _spec()
    G = m.G.copy()
    answers = m.col_indices(list(spec.answers))
    q = m.row_indices(spec.queries)  # make answer 0 the top answer after every query
    push = np.linalg.lstsq(m.F[q], np.full(len(q), 1e3), rcond=None)[0]
    G[answers[0]] += push
    from allornone import NextTokenPredictor

    trivial = relational(NextTokenPredictor(m.F, G), spec, seed=0, kl=False)
    assert trivial.baseline["majority_answer"] == 1.0
    assert trivial.details["decided"] is False and trivial.details["beats_majority"] is False
    assert trivial.details["note"].startswith("not decided: the dist_faithfulness interval")
