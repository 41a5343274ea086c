"""Calibrated cross-model statistics (THEORY.md 10.3): a permutation null over the context
correspondence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planted import planted

import allornone as aon


@pytest.mark.parametrize("width", [4, 16, 64])
def test_independent_models_calibrate_to_about_zero_at_any_width(width):
    cals, raws, ps = [], [], []
    for seed in range(6):
        rng = np.random.default_rng(1000 * width + seed)
        X, Y = rng.standard_normal((240, width)), rng.standard_normal((240, width))
        c = aon.calibrate(aon.map_similarity, X, Y, permutations=39, seed=seed)
        cals.append(c.calibrated)
        raws.append(c.raw)
        ps.append(c.p_value)
        assert c.null_q05 <= c.null_median <= c.null_q95
    assert abs(np.mean(cals)) < 0.05 and max(abs(x) for x in cals) < 0.15
    assert np.median(ps) > 0.1  # not significant
    if width == 64:  # the raw score is far from 0 at this width; the calibrated one is not
        assert np.mean(raws) < -0.1


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), junk=st.sampled_from(["random", "shuffle", "adversarial"]))
def test_equivalent_models_calibrate_to_one_with_small_p(seed, junk):
    m, _ = planted(np.random.default_rng(seed), n=120)
    s = aon.sample_equivalent(m, dim=m.d + 3, junk=junk, seed=seed + 1)
    ea, eb = aon.structure(m).e_f, aon.structure(s).e_f
    c = aon.calibrate(aon.map_similarity, ea, eb, permutations=19, seed=seed)
    assert c.raw > 1 - 1e-9 and c.calibrated > 1 - 1e-9
    assert c.p_value == pytest.approx(1 / 20)
    # a distance on the same scale: 1 - similarity, 0 for identical data
    d = aon.calibrate(
        lambda x, y: 1 - aon.map_similarity(x, y), ea, eb, kind="distance", permutations=19
    )
    assert d.raw < 1e-9 and d.calibrated > 1 - 1e-8 and d.p_value == pytest.approx(1 / 20)


def test_logratio_agreement_is_one_across_the_class_and_calibrated():
    m, _ = planted(np.random.default_rng(7), n=100)
    s = aon.sample_equivalent(m, junk="adversarial", seed=3).model
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    la = np.stack([m.F @ (m.G[b] - m.G[a]) for a, b in pairs], 1)
    lb = np.stack([s.F @ (s.G[b] - s.G[a]) for a, b in pairs], 1)
    c = aon.calibrate(aon.logratio_agreement, la, lb, permutations=29)
    assert c.raw == pytest.approx(1.0, abs=1e-12) and c.calibrated == pytest.approx(1, abs=1e-9)
    assert c.p_value == pytest.approx(1 / 30)
    # the raw unembedding differences are not parallel across the two models' coordinates
    other, _ = planted(np.random.default_rng(8), n=100)
    lo = np.stack([other.F @ (other.G[b] - other.G[a]) for a, b in pairs], 1)
    assert abs(aon.calibrate(aon.logratio_agreement, la, lo, permutations=29).calibrated) < 0.3


def test_null_is_seeded_and_frame_has_the_numbers():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    c1 = aon.calibrate(aon.map_similarity, X, Y, permutations=9, seed=4)
    c2 = aon.calibrate(aon.map_similarity, X, Y, permutations=9, seed=4)
    assert np.array_equal(c1.null, c2.null) and c1.null.shape == (9,)
    df = c1.to_frame()
    assert list(df.attrs["identified"]) == [
        "raw",
        "null_q05",
        "null_median",
        "null_q95",
        "calibrated",
        "p_value",
    ]
    assert "null=" not in repr(c1)


def test_bad_input_gets_one_line_errors():
    X = np.zeros((10, 2))
    with pytest.raises(aon.AllOrNoneError, match="kind"):
        aon.calibrate(aon.map_similarity, X, X, kind="cosine")
    with pytest.raises(aon.AllOrNoneError, match="permutations"):
        aon.calibrate(aon.map_similarity, X, X, permutations=0)
    with pytest.raises(aon.AllOrNoneError, match="rows"):
        aon.calibrate(aon.map_similarity, X, np.zeros((9, 2)))
    with pytest.raises(aon.AllOrNoneError, match="statistic"):
        aon.calibrate("map", X, X)  # type: ignore[arg-type]
    with pytest.raises(aon.AllOrNoneError, match="underdetermined"):
        aon.map_similarity(np.zeros((10, 7)), np.zeros((10, 2)))  # 7 + 1 > 7 training rows
    with pytest.raises(aon.AllOrNoneError, match="same shape"):
        aon.logratio_agreement(X, np.zeros((10, 3)))


def test_compare_reports_distances_and_calibrated_similarity(tmp_path):
    from audit_helpers import LABELS, RELATIONS, tiny_model

    from allornone.audit.compare import CompareConfig, run_compare, write_compare

    cfg = CompareConfig("a", "b", labels=str(LABELS), relations=str(RELATIONS), progress=False)
    res = run_compare(cfg, models=(tiny_model(d=24), tiny_model(d=32)))
    sim = res["similarity"]
    d = sim["distances"]
    assert 0 <= d["d_fg"] <= min(1.0, d["bound"] + 1e-12) and d["d_llv"] > 0
    assert d["mean_kl"] == pytest.approx(res["distance"]["mean_kl"], rel=0.05)
    assert sim["logratio_agreement"] and sim["permutations"] == 99
    write_compare(res, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "Distances and calibrated similarity" in md and "log-ratio agreement" in md
    # the same model twice: distance 0, calibrated similarity 1, smallest p
    same = run_compare(cfg, models=(tiny_model(d=24), tiny_model(d=24)))["similarity"]
    assert same["distances"]["d_llv"] < 1e-6 and same["distances"]["d_fg"] < 1e-6
    assert same["map_similarity"]["calibrated"] > 1 - 1e-6
    assert same["map_similarity"]["p_value"] == pytest.approx(0.01)
