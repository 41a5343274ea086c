"""Cyclic and ordered concepts (THEORY.md 11), as theorems on planted float64 models.

The test names are the statements of THEORY.md 11: the log-odds form is identified (11.1);
affine invariants are all-or-none when M = R^d (11.2); Euclidean circularity is not
identified (11.3); affine invariants computed on the raw and on the log-odds points agree
(11.4); random items give the chance values; a line in order; rank-deficient and junk-filled
cases; bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planted import planted

import allornone as aon
from allornone.data.orders import builtin_orders, read_order_file
from allornone.testing import check_property

cyclic = aon.properties.cyclic


def _with_circle(rng, m=8, *, d=10, k=6, jf=2, jg=2, n=60, V=40, in_junk=0.0):
    """A planted model whose first ``m`` tokens lie exactly on a circle in a plane of E (plus
    ``in_junk`` times a junk direction per item)."""
    model, fr = planted(rng, n=n, V=V, d=d, k=k, jf=jf, jg=jg)
    t = 2 * np.pi * np.arange(m) / m
    E = fr["E"]
    G = model.G.copy()
    G[:m] = 3 * np.cos(t)[:, None] * E[:, 0] + 3 * np.sin(t)[:, None] * E[:, 1]
    if in_junk and jg:
        G[:m] += in_junk * rng.standard_normal((m, 1)) * fr["J_g"][:, 0]
    return aon.NextTokenPredictor(model.F, G), fr


def test_the_log_odds_form_is_identified() -> None:
    """11.1: every identified statistic is equal in every sampled equivalent model (all junk
    modes, three widths), on both sides and for both kinds (check_property)."""
    m, _ = _with_circle(np.random.default_rng(0))
    for kw in ({}, {"side": "f"}, {"kind": "line"}, {"kind": "line", "side": "f"}):
        r = check_property(cyclic, list(range(8)), m, **kw)
        assert set(r.identified) >= {"affine_rank"}


def test_euclidean_circularity_is_not_identified() -> None:
    """11.3: an adversarial equivalent sample turns the raw circle into an ellipse; every
    identified statistic stays to 1e-9."""
    m, _ = _with_circle(np.random.default_rng(1))
    r = cyclic(m, list(range(8)))
    assert r.raw["radius_cv"] < 1e-12 and r.raw["order_agreement"] == 1.0
    moved = 0.0
    for seed in range(3):
        s = aon.sample_equivalent(m, dim=m.d + 3, seed=seed, junk="adversarial")
        r2 = cyclic(s.model, list(range(8)))
        for key, val in r.identified.items():
            assert r2.identified[key] == pytest.approx(val, rel=1e-9, abs=1e-9), key
        moved = max(moved, r2.raw["radius_cv"])
    assert moved > 0.05  # the Euclidean circle is gone in some equivalent model
    assert not r.all_or_none  # M != R^d here


def test_affine_invariants_are_all_or_none_when_M_is_the_whole_space() -> None:
    """11.2 and 11.4: with k = d (M = R^d, no junk) every equivalent model of width k writes
    the items as B x_i; the affine invariants (cca_polygon, order_agreement of planar items)
    are the same in all of them and equal to their identified values, while the Euclidean
    radius_cv moves."""
    rng = np.random.default_rng(2)
    m, _ = _with_circle(rng, d=6, k=6, jf=0, jg=0)
    r = cyclic(m, list(range(8)))
    assert r.all_or_none
    for key in ("cca_polygon", "order_agreement"):
        assert r.raw[key] == pytest.approx(r.identified[key], abs=1e-9)
    radii = []
    for seed in range(4):
        s = aon.sample_equivalent(m, dim=6, seed=seed, junk="zero")
        r2 = cyclic(s.model, list(range(8)))
        assert r2.all_or_none
        for key in ("cca_polygon", "order_agreement"):
            assert r2.raw[key] == pytest.approx(r.raw[key], abs=1e-9), key
        radii.append(r2.raw["radius_cv"])
    assert max(radii) > 0.01  # the raw circle itself is not kept


def test_junk_in_the_items_breaks_even_affine_invariants() -> None:
    """11.2, the other direction: with M != R^d an adversarial sample adds junk per item; the
    verdict says so and the raw order statistic moves in some sample."""
    m, _ = _with_circle(np.random.default_rng(3), in_junk=0.5)
    r = cyclic(m, list(range(8)))
    assert not r.all_or_none and r.condition_size >= np.sqrt(2 / 10)
    changes = [
        abs(cyclic(aon.sample_equivalent(m, dim=14, seed=s, junk="adversarial").model,
                   list(range(8))).raw["cca_polygon"] - r.raw["cca_polygon"])
        for s in range(4)
    ]  # fmt: skip
    assert max(changes) > 1e-3


def test_random_items_give_chance_values() -> None:
    """Items in random position: no closed curve in order; the statistics sit at their
    baselines (random sets, shuffled orders)."""
    rng = np.random.default_rng(4)
    m, _ = planted(rng, n=80, V=200, d=16, k=10, jf=3, jg=3)
    r = cyclic(m, list(range(12)), baseline_draws=30)
    assert r.identified["order_agreement"] < 0.5
    assert abs(r.identified["cca_polygon"] - r.baseline["shuffled_cca_polygon"]) < 0.35
    assert r.baseline["shuffled_order_agreement"] < 0.4
    planted_circle, _ = _with_circle(np.random.default_rng(4), m=12, V=200)
    c = cyclic(planted_circle, list(range(12)), baseline_draws=30)
    assert c.identified["cca_polygon"] > 0.999 > c.baseline["shuffled_cca_polygon"] + 0.3


def test_a_line_in_order() -> None:
    """Items at equal steps along a line of E: rank correlation and betweenness 1, line
    energy 1, in both forms; shuffled orders near chance."""
    rng = np.random.default_rng(5)
    m, fr = planted(rng, n=60, V=40, d=10, k=6, jf=2, jg=2)
    G = m.G.copy()
    G[:10] = np.arange(10)[:, None] * fr["E"][:, 1] + 1.0
    m = aon.NextTokenPredictor(m.F, G)
    r = check_property(cyclic, list(range(10)), m, kind="line")
    for part in (r.raw, r.identified):
        assert part["rank_corr"] == pytest.approx(1.0)
        assert part["betweenness"] == 1.0 and part["line_energy"] == pytest.approx(1.0)
    assert r.baseline["shuffled_rank_corr"] < 0.6
    assert r.identified["affine_rank"] == 1.0


def test_rank_deficient_and_junk_filled_models() -> None:
    """A model whose contexts do not span R^d (k < d, both junk blocks) and its samples with
    every junk mode: identified values invariant (check_property), verdict not all-or-none."""
    rng = np.random.default_rng(6)
    m, _ = planted(rng, n=30, V=50, d=14, k=3, jf=4, jg=5)
    r = check_property(cyclic, list(range(6)), m)
    assert not r.all_or_none
    assert r.identified["affine_rank"] <= 3  # the log-odds live in k = 3 dimensions


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(5, 12), side=st.sampled_from(["g", "f"]))
def test_the_log_odds_form_is_identified_on_random_models(seed: int, m: int, side: str) -> None:
    """11.1 on random planted models: identified values equal across a random and an
    adversarial sample, to 1e-8 relative."""
    rng = np.random.default_rng(seed)
    model, _ = planted(rng, n=40, V=40, d=10, k=5, jf=2, jg=3)
    r = cyclic(model, list(range(m)), side=side, baseline_draws=0)
    for junk in ("random", "adversarial"):
        s = aon.sample_equivalent(model, dim=13, seed=seed, junk=junk)
        r2 = cyclic(s.model, list(range(m)), side=side, baseline_draws=0)
        for key, val in r.identified.items():
            assert r2.identified[key] == pytest.approx(val, rel=1e-8, abs=1e-8), key


def test_bad_input_is_one_line(tmp_path) -> None:
    rng = np.random.default_rng(7)
    m, _ = planted(rng)
    with pytest.raises(aon.AllOrNoneError, match="at least 4 items"):
        cyclic(m, [0, 1, 2])
    with pytest.raises(aon.AllOrNoneError, match=r"item 1 repeats item 1"):
        cyclic(m, [0, 1, 2, 1])
    with pytest.raises(aon.AllOrNoneError, match="kind must be 'cycle' or 'line'"):
        cyclic(m, [0, 1, 2, 3], kind="circle")
    with pytest.raises(aon.AllOrNoneError, match="side must be"):
        cyclic(m, [0, 1, 2, 3], side="x")
    f = tmp_path / "days.txt"
    f.write_text("Monday\nTuesday\nWednesday\nThursday\n")
    with pytest.raises(aon.AllOrNoneError, match=r"days.txt, line 1: no header.*'# cycle'"):
        read_order_file(f)
    f.write_text("# spiral\nMonday\nTuesday\nWednesday\nThursday\n")
    with pytest.raises(aon.AllOrNoneError, match=r"line 1: an unknown kind 'spiral'"):
        read_order_file(f)
    f.write_text("# cycle\nMonday\nTuesday\nMonday\nThursday\n")
    with pytest.raises(aon.AllOrNoneError, match=r"line 4: 'Monday' repeats line 2"):
        read_order_file(f)
    f.write_text("# line\none\ntwo\n")
    with pytest.raises(aon.AllOrNoneError, match="2 item.*at least 4"):
        read_order_file(f)
    f.write_text("\ufeff# cycle\n# template: See you on {}\nMon\nTue\nWed\nThu\n")
    o = read_order_file(f)  # a byte-order mark is read, the template kept
    assert o.kind == "cycle" and o.items == ("Mon", "Tue", "Wed", "Thu")
    assert o.contexts()[0] == "See you on Mon"


def test_builtin_sets() -> None:
    names = [o.name for o in builtin_orders()]
    assert names[:2] == ["months", "weekdays"] and len(names) == 5
    months = builtin_orders(quick=True)[0]
    assert months.kind == "cycle" and len(months.items) == 12
    assert months.contexts()[0] == "It happened in January"
    years = builtin_orders()[-1]
    assert years.kind == "line" and years.items[0] == "1900" and years.items[-1] == "2020"


def test_audit_reads_an_order_file(tmp_path, monkeypatch) -> None:
    """``allornone audit --orders FILE``: the user's set, on tokens and on its template's
    contexts, in results.json, report.md (with its legend) and a figure; a bad file is one
    line (exit 2) before the model loads."""
    import json

    from audit_helpers import tiny_args, tiny_model

    from allornone.audit import pipeline
    from allornone.cli import main

    loads: list[int] = []

    def load(cfg):
        loads.append(1)
        return tiny_model()

    monkeypatch.setattr(pipeline, "load_model", load)
    f = tmp_path / "sizes.txt"
    f.write_text("# line\n# template: It is {}\nsmall\nbig\ntall\nking\n")
    out = tmp_path / "rep"
    assert main([*tiny_args(out), "--orders", str(f)]) == 0
    res = json.loads((out / "results.json").read_text())
    mine = [p for p in res["properties"] if p["property"] == "cyclic"]
    assert [p["name"] for p in mine] == ["sizes (tokens)", "sizes (contexts)"]
    assert res["config"]["options"]["orders"] == [str(f)]
    md = (out / "report.md").read_text()
    assert "## Cyclic and ordered concepts" in md and "- `rank_corr`:" in md
    assert (out / "figures" / "orders.png").is_file()
    bad = tmp_path / "bad.txt"
    bad.write_text("small\nbig\ntall\nking\n")
    n = len(loads)
    assert main([*tiny_args(tmp_path / "rep2"), "--orders", str(bad)]) == 2
    assert len(loads) == n  # refused before the model loaded
