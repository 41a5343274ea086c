"""The family study's statistics: exact paired tests, bootstrap intervals, decided or not."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from allornone.family import stats as S


def _signed_rank_by_enumeration(d):
    """Exact two-sided p of W+ by listing all 2^n sign patterns (midranks for ties)."""
    d = np.asarray([x for x in d if x != 0], dtype=float)
    a = np.abs(d)
    ranks = np.array([np.mean(np.flatnonzero(np.sort(a) == v)) + 1 for v in a])
    w = ranks[d > 0].sum()
    total = ranks.sum()
    ws = [
        sum(r for r, s in zip(ranks, signs) if s)
        for signs in itertools.product([0, 1], repeat=len(d))
    ]
    ws = np.array(ws)
    lo = min(w, total - w)
    p = 2 * np.mean(ws <= lo + 1e-9)
    return w, min(1.0, p) if abs(w - (total - w)) > 1e-9 else 1.0


@pytest.mark.parametrize(
    "d",
    [
        [1.0, 2.0, 3.0, 4.0, 5.0],
        [0.3, -0.1, 0.25, 0.4, -0.05, 0.6, 0.2],
        [1.0, 1.0, -1.0, 2.0, 2.0, -3.0, 0.5, 0.0],  # ties and a zero
        [-0.2, -0.5, -0.1, 0.05, -0.7, -0.3, -0.4, -0.9, 0.2, -0.6, -0.15],
    ],
)
def test_exact_signed_rank_p_matches_enumeration(d):
    w, p, n = S.wilcoxon_signed_rank(d)
    w_ref, p_ref = _signed_rank_by_enumeration(d)
    assert n == sum(1 for x in d if x != 0)
    assert w == pytest.approx(w_ref)
    assert p == pytest.approx(p_ref, abs=1e-12)


def test_signed_rank_known_values():
    # all 5 positive: W+ = 15, p = 2 / 32 (the smallest possible with n = 5)
    w, p, _ = S.wilcoxon_signed_rank([1, 2, 3, 4, 5])
    assert w == 15 and p == pytest.approx(2 / 32)
    assert S.wilcoxon_signed_rank([0.0, 0.0]) == (0.0, 1.0, 0)


def test_sign_test_is_the_exact_binomial():
    pos, neg, p = S.sign_test([1, 2, 3, -1, 4, 5, 6, 7])  # 7+ / 1-
    assert (pos, neg) == (7, 1)
    assert p == pytest.approx(2 * (1 + 8) / 256)
    assert S.sign_test([1, -1])[2] == 1.0
    assert S.sign_test([])[2] == 1.0


def _synthetic_rows(rng, n_seeds, n_fams, sigma_raw, sigma_ide, widths=(64,)):
    rows = []
    for w in widths:
        mu_r = rng.uniform(0.1, 0.6, n_fams)
        mu_i = mu_r + 0.1
        for s in range(n_seeds):
            for f in range(n_fams):
                rows.append(
                    {
                        "width": w,
                        "seed": s,
                        "family": f"fam{f}",
                        "raw_euclid_cos": mu_r[f] + sigma_raw * rng.standard_normal(),
                        "identified_logodds_corr": mu_i[f] + sigma_ide * rng.standard_normal(),
                    }
                )
    return rows


def test_bootstrap_interval_covers_the_true_ratio():
    """Synthetic families with a known spread ratio: the 90% interval of the geometric-mean
    std ratio contains the true ratio in most datasets (the estimator is unbiased on the log
    scale: both sample stds have the same distribution up to sigma)."""
    rng = np.random.default_rng(1)
    truth = 1.5
    hits, n_sets = 0, 120
    for k in range(n_sets):
        rows = _synthetic_rows(rng, 8, 10, 0.03 * truth, 0.03)
        q = S.stability_questions(rows, n_boot=400, level=0.9, seed=k)[0]
        assert q.key == "steadier" and q.width == 64
        hits += q.interval.low <= truth <= q.interval.high
    assert 0.8 <= hits / n_sets <= 1.0


def test_a_large_effect_is_decided_and_no_effect_is_not():
    rng = np.random.default_rng(2)
    yes = S.stability_questions(_synthetic_rows(rng, 8, 12, 0.09, 0.02), n_boot=500)
    q = next(q for q in yes if q.key == "steadier")
    assert q.answer == "yes" and q.interval.low > 1 and q.test.wilcoxon_p < 0.01
    assert q.sentence.startswith("Is the identified parallelism statistic steadier")
    assert "Yes:" in q.sentence and "8 seeds x 12 concept families" in q.sentence
    no = S.stability_questions(_synthetic_rows(rng, 8, 12, 0.02, 0.09), n_boot=500)
    q = next(q for q in no if q.key == "steadier")
    assert q.answer == "no" and q.interval.high < 1
    assert "raw statistic is the steadier" in q.sentence
    # identified = raw + 0.1 in every family: "larger" is decided
    q = next(q for q in yes if q.key == "larger")
    assert q.answer == "yes" and q.interval.low > 0
    # equal spreads: undecided in most synthetic sets
    undecided = 0
    for k in range(20):
        rows = _synthetic_rows(np.random.default_rng(100 + k), 8, 10, 0.03, 0.03)
        undecided += S.stability_questions(rows, n_boot=300, seed=k)[0].answer == "undecided"
    assert undecided >= 15


def test_fewer_than_three_seeds_give_the_point_estimate_only():
    rng = np.random.default_rng(3)
    qs = S.stability_questions(_synthetic_rows(rng, 2, 6, 0.05, 0.02, widths=(16, 32)))
    assert {q.key for q in qs} == {"steadier", "larger", "width_sensitive"}
    for q in qs:
        assert q.interval.low is None and q.interval.high is None
        assert q.answer == "undecided"
        assert "fewer than 3 seeds (2): point estimate only" in q.sentence
        assert math.isfinite(q.interval.estimate)
        assert q.n_seeds == 2
    # one seed: no spread at all, still no crash
    q1 = S.stability_questions(_synthetic_rows(rng, 1, 6, 0.05, 0.02))
    assert q1[0].answer == "undecided" and not math.isfinite(q1[0].interval.estimate)


def test_deterministic_given_the_seed_and_pooled_questions_exist():
    rows = _synthetic_rows(np.random.default_rng(4), 5, 7, 0.04, 0.03, widths=(64, 96, 128))
    a = [q.to_dict() for q in S.stability_questions(rows, n_boot=300, seed=7)]
    b = [q.to_dict() for q in S.stability_questions(rows, n_boot=300, seed=7)]
    c = [q.to_dict() for q in S.stability_questions(rows, n_boot=300, seed=8)]
    assert a == b and a != c
    keys = [(q["key"], q["width"]) for q in a]
    assert keys == [
        ("steadier", 64),
        ("larger", 64),
        ("steadier", 96),
        ("larger", 96),
        ("steadier", 128),
        ("larger", 128),
        ("steadier", None),
        ("larger", None),
        ("width_sensitive", None),
    ]


def test_missing_values_drop_the_concept_family():
    rows = _synthetic_rows(np.random.default_rng(5), 4, 5, 0.04, 0.03)
    rows[0]["identified_logodds_corr"] = None  # seed 0, fam0
    q = S.stability_questions(rows, n_boot=200)[0]
    assert q.n_families == 4 and q.n_seeds == 4


def test_row_ratio_interval():
    rng = np.random.default_rng(6)
    raw = 0.5 + 0.1 * rng.standard_normal(8)
    ide = 0.5 + 0.01 * rng.standard_normal(8)
    iv = S.row_ratio_interval(raw, ide, n_boot=500)
    assert iv.low is not None and iv.low > 1 and iv.low <= iv.estimate <= iv.high
    two = S.row_ratio_interval(raw[:2], ide[:2])
    assert two.low is None and "fewer than 3 seeds" in (two.reason or "")
