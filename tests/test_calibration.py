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
        "threshold",
        "calibrated",
        "median_calibrated",
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


def _fixed_null_case(seed: int = 2, K: int = 39):
    """Paired data with a weak real correspondence, and the permutations ``calibrate`` uses."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((90, 3))
    Y = 0.4 * X @ rng.standard_normal((3, 3)) + rng.standard_normal((90, 3))
    prng = np.random.default_rng(seed)
    perms = [prng.permutation(90) for _ in range(K)]
    return X, Y, perms


def test_calibrated_is_the_papers_formula_on_fixed_permutations():
    # Groger, Wen and Brbic (arXiv 2602.14486), Algorithm 1, written out literally: tau is the
    # ceil((1 - alpha)(K + 1))-th smallest of the observed value and the K null values, and
    # calibrated = clamp((s - tau) / (1 - tau), 0, 1)
    X, Y, perms = _fixed_null_case()
    K = len(perms)
    sim = aon.logratio_agreement
    s = sim(X, Y)
    null = np.array([sim(X, Y[p]) for p in perms])
    combined = sorted([s, *null])
    tau = combined[int(np.ceil(0.95 * (K + 1))) - 1]
    c = aon.calibrate(sim, X, Y, permutations=K, seed=2)
    np.testing.assert_array_equal(c.null, null)
    assert c.threshold == tau and c.alpha == 0.05
    assert c.calibrated == pytest.approx(min(max((s - tau) / (1 - tau), 0), 1), abs=1e-15)
    assert 0.05 < c.calibrated < 0.95  # the case is neither clamped at 0 nor at 1
    med = float(np.median(null))
    assert c.median_calibrated == pytest.approx((s - med) / (1 - med), abs=1e-15)
    assert c.median_calibrated != pytest.approx(c.calibrated, abs=0.01)  # they differ here
    assert c.p_value == (1 + np.sum(null >= s)) / (K + 1)
    # below the threshold the paper's score is 0 (the median form is not)
    below = aon.calibrate(sim, X, Y[perms[0]], permutations=K, seed=2)
    assert below.calibrated == 0 or below.raw > below.threshold
    # a distance: the mirror image, tau the alpha lower critical value
    d = aon.calibrate(lambda x, y: 1 - sim(x, y), X, Y, kind="distance", permutations=K, seed=2)
    low = sorted([1 - s, *(1 - null)], reverse=True)[int(np.ceil(0.95 * (K + 1))) - 1]
    assert d.threshold == pytest.approx(low, abs=1e-15)
    assert d.calibrated == pytest.approx(min(max((low - (1 - s)) / low, 0), 1), abs=1e-12)
    with pytest.raises(aon.AllOrNoneError, match="alpha"):
        aon.calibrate(sim, X, Y, alpha=1.5)


def test_calibrated_matches_the_papers_package_on_the_same_permutations():
    cs = pytest.importorskip("calibrated_similarity")
    torch = pytest.importorskip("torch")
    X, Y, perms = _fixed_null_case()
    it = iter(perms)
    score, p, tau = cs.calibrate(
        torch.tensor(X),
        torch.tensor(Y),
        lambda x, y: aon.logratio_agreement(x.numpy(), y.numpy()),
        K=len(perms),
        perm_fn=lambda n, device: torch.as_tensor(next(it)),
    )
    c = aon.calibrate(aon.logratio_agreement, X, Y, permutations=len(perms), seed=2)
    # the package stores scores in float32
    assert c.threshold == pytest.approx(float(tau), abs=1e-6)
    assert c.calibrated == pytest.approx(float(score), abs=1e-6)
    assert c.p_value == pytest.approx(float(p), abs=1e-7)
