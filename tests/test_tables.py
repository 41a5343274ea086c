"""Tables and notebook views (``to_frame``, ``_repr_html_``) and reprs with plain numbers.

The identified columns of a table are the ones an equivalent model cannot change: for a
planted model and sampled members of its class they agree to 1e-9 relative, while the raw
columns of an adversarial sample move.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from planted import planted

import allornone as aon
from allornone._tables import plain, to_frame
from allornone.properties import RelationSpec, parallelism, probe, relational, steering

PAIRS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]


@pytest.fixture(scope="module")
def setup():
    model, _ = planted(np.random.default_rng(3), n=60, V=70, d=12, k=4, jf=2, jg=3)
    st = aon.structure(model)
    sample = aon.sample_equivalent(model, seed=1, junk="adversarial")
    eq = aon.equivalence(model, sample.model)
    return model, st, sample, eq


def _close(a: pd.DataFrame, b: pd.DataFrame, cols: list[str], rtol: float = 1e-9) -> None:
    assert cols, "no identified columns to compare"
    x = a[cols].to_numpy(dtype=float)
    y = b[cols].to_numpy(dtype=float)
    scale = np.maximum(np.abs(y), 1e-300)
    assert np.all(np.abs(x - y) <= rtol * np.maximum(scale, 1.0)), (x, y)


# ---------------------------------------------------------------------- Structure
def test_structure_frame_one_row_per_singular_value(setup):
    _, st, _, _ = setup
    df = st.to_frame()
    assert list(df.columns) == [
        "i",
        "sigma",
        "relative_sigma",
        "cumulative_energy",
        "in_effective_k",
    ]
    assert len(df) == st.singular_values.size
    assert df["i"].tolist() == list(range(1, len(df) + 1))
    assert int(df["in_effective_k"].sum()) == st.k == 4
    assert df["relative_sigma"].iloc[0] == 1.0
    np.testing.assert_allclose(df["sigma"], st.singular_values)
    assert df.attrs["k"] == 4 and df.attrs["dim_J_g"] == st.dim_J_g == 3
    assert df.attrs["dim_J_f"] == 2 and isinstance(df.attrs["tol"], float)
    assert df.attrs["identified"] == [
        "sigma",
        "relative_sigma",
        "cumulative_energy",
        "in_effective_k",
    ]
    row = st.to_frame(per_item=False)
    assert len(row) == 1 and row["k"].item() == 4 and row["dim_J_g"].item() == 3
    assert "k" in row.attrs["identified"] and "dim_J_g" in row.attrs["raw"]


def test_structure_spectrum_is_identified(setup):
    model, st, sample, _ = setup
    a, b = st.to_frame(), aon.structure(sample.model).to_frame()
    k = st.k
    _close(a.iloc[:k], b.iloc[:k], ["sigma", "relative_sigma", "cumulative_energy"])
    # beyond k both spectra are rounding noise, far below the cut
    assert a["relative_sigma"].iloc[k:].max() < 1e-12 and b["relative_sigma"].iloc[k:].max() < 1e-12
    assert a["in_effective_k"].tolist()[: k + 1] == b["in_effective_k"].tolist()[: k + 1]


# ---------------------------------------------------------------------- Equivalence
def test_equivalence_frame_is_its_summary(setup):
    _, _, _, eq = setup
    df = eq.to_frame()
    assert len(df) == 1
    summary = eq.summary()
    assert set(summary) <= set(df.columns)
    assert bool(df["equivalent"].item()) is True and df["k_a"].item() == 4
    assert df["residual_f"].item() == pytest.approx(eq.residual_f, rel=0, abs=0)
    assert df["reasons"].item() == ""
    assert "mean_kl" in df.attrs["identified"] and "residual_g" in df.attrs["raw"]


# ---------------------------------------------------------------------- PropertyResult
def test_parallelism_frame_per_pair_and_summary(setup):
    model, st, _, _ = setup
    r = parallelism(model, PAIRS, baseline_draws=3)
    df = r.to_frame()
    assert len(df) == len(PAIRS)
    assert df["item"].tolist()[0] == "0 -> 1" and df["a"].tolist() == [a for a, _ in PAIRS]
    ident = [f"identified.{k}" for k in r.identified]
    assert df.attrs["identified"] == ident
    assert df.attrs["raw"] == [f"raw.{k}" for k in r.raw]
    assert set(ident) <= set(df.columns)
    # per pair: mean over the other pairs; for a symmetric statistic their mean is the result's
    np.testing.assert_allclose(df["identified.logodds_corr"].mean(), r.identified["logodds_corr"])
    np.testing.assert_allclose(
        df["condition_size"], r.details["outside_M_per_pair"], rtol=1e-12, atol=0
    )
    assert (df["property"] == "parallelism").all() and not df["all_or_none"].any()
    labelled = aon.NextTokenPredictor(model.F, model.G, tokens=[f" t{i}" for i in range(model.V)])
    items = parallelism(labelled, [(" t0", " t1"), (" t2", " t3")], baseline_draws=0).to_frame()
    assert items["item"].tolist() == ["' t0' -> ' t1'", "' t2' -> ' t3'"]

    row = r.to_frame(per_item=False)
    assert len(row) == 1
    for key, val in r.identified.items():
        assert row[f"identified.{key}"].item() == val
    for key, val in r.raw.items():
        assert row[f"raw.{key}"].item() == val
    assert row["baseline.draws"].item() == 3.0
    assert row["condition"].item() == r.condition and row["n_excluded"].item() == 0


@pytest.mark.parametrize("junk", ["adversarial", "random", "shuffle"])
def test_identified_columns_are_identified(setup, junk):
    model, _, _, _ = setup
    other = aon.sample_equivalent(model, seed=5, junk=junk).model
    ra, rb = (
        parallelism(model, PAIRS, baseline_draws=0),
        parallelism(other, PAIRS, baseline_draws=0),
    )
    for per_item in (True, False):
        a, b = ra.to_frame(per_item=per_item), rb.to_frame(per_item=per_item)
        assert a.attrs["identified"] == b.attrs["identified"]
        _close(a, b, a.attrs["identified"])
    if junk == "adversarial":  # the raw columns are not identified: the junk moves them
        a, b = ra.to_frame(), rb.to_frame()
        cols = a.attrs["raw"]
        assert np.abs(a[cols].to_numpy() - b[cols].to_numpy()).max() > 1e-3


def test_relational_steering_probing_frames(setup):
    model, _, sample, _ = setup
    other = sample.model
    rows_s, rows_q = np.arange(30), np.arange(30, 60)

    def rel_of(m):
        return relational(m, RelationSpec(rows_s, rows_q, [0, 1, 2, 3]), kl=False)

    ra, rb = rel_of(model), rel_of(other)
    a, b = ra.to_frame(), rb.to_frame()
    assert len(a) == 30 and a["test"].sum() == len(ra.details["test"])
    assert set(a.attrs["identified"]) == {"identified.dist_agrees", "model_answer"}
    assert a["model_answer"].isin([0, 1, 2, 3]).all()
    assert a[a.attrs["identified"]].equals(b[b.attrs["identified"]])
    # the test-set mean of the per-subject agreement is the result's faithfulness
    assert a.loc[a["test"], "identified.dist_agrees"].mean() == pytest.approx(
        ra.identified["dist_faithfulness"]
    )

    sa = steering(model, model.F[0] - model.F[1], targets=[0, 5, 9])
    sb = steering(other, other.F[0] - other.F[1], targets=[0, 5, 9])
    fa, fb = sa.to_frame(), sb.to_frame()
    assert fa["item"].tolist() == [0, 5, 9]
    assert fa.attrs["identified"] == ["identified.shift"]
    _close(fa, fb, ["identified.shift"])
    assert fa["identified.shift"].mean() == pytest.approx(sa.identified["target_shift"])

    labels = (model.F[:, 0] > 0).astype(int)
    pa = probe(model, labels)
    fp = pa.to_frame()
    assert len(fp) == np.asarray(pa.details["row_residuals"]).size
    assert fp["condition_size"].max() == pytest.approx(pa.condition_size)
    pb = probe(other, labels)
    _close(
        pa.to_frame(per_item=False),
        pb.to_frame(per_item=False),
        ["identified.logodds_test_accuracy"],
    )


# ---------------------------------------------------------------------- lists
def test_to_frame_of_a_list_and_a_dict(setup):
    model, st, _, eq = setup
    fams = {"first": PAIRS[:3], "second": PAIRS[2:]}
    results = {name: parallelism(model, p, name=name, baseline_draws=0) for name, p in fams.items()}
    df = to_frame(results)
    assert len(df) == 2 and df["key"].tolist() == ["first", "second"]
    assert df["name"].tolist() == ["first", "second"]
    assert df.attrs["identified"] == [f"identified.{k}" for k in results["first"].identified]
    per = to_frame(list(results.values()), per_item=True)
    assert len(per) == 3 + 3 and "key" not in per.columns

    mixed = to_frame([st, eq, results["first"]])
    assert len(mixed) == 3
    assert mixed["k"].iloc[0] == 4 and bool(mixed["equivalent"].iloc[1]) is True
    assert {"k", "mean_kl", "identified.logodds_corr"} <= set(mixed.attrs["identified"])
    assert "dim_J_g" in mixed.attrs["raw"] and "raw.euclid_cos" in mixed.attrs["raw"]
    assert len(to_frame([])) == 0 and to_frame([]).attrs["identified"] == []


def test_to_frame_rejects_what_it_cannot_tabulate(setup):
    model, st, sample, _ = setup
    with pytest.raises(TypeError, match="list or a dict"):
        to_frame(st)
    with pytest.raises(TypeError, match="item 1 is a EquivalentSample"):
        to_frame([st, sample])


# ---------------------------------------------------------------------- HTML
def test_html_views_show_the_numbers_and_escape(setup):
    model, st, _, eq = setup
    h = st._repr_html_()
    assert h.startswith("<table") and h.endswith("</table>")
    assert "effective complexity k</td><td" in h and ">4</td>" in h
    assert "sharp" in h and "1, " in h  # the spectrum line starts at sigma_max / sigma_max

    h = eq._repr_html_()
    assert "equivalent: same next-token distribution" in h and f"{eq.cond_A:.4g}" in h

    r = parallelism(model, PAIRS, name="<script>alert(1)</script>", baseline_draws=0)
    h = r._repr_html_()
    assert "<script>" not in h and "&lt;script&gt;alert(1)&lt;/script&gt;" in h
    assert f"{r.identified['logodds_corr']:.4g}" in h and "NOT all-or-none" in h
    assert h.count("identified") >= len(r.identified)


# ---------------------------------------------------------------------- reprs
def test_reprs_print_plain_numbers(setup):
    model, st, sample, eq = setup
    r = parallelism(model, PAIRS, baseline_draws=2)
    for obj in (model, st, eq, sample, r):
        text = repr(obj)
        assert "np.float64" not in text and "np.int64" not in text and "np.bool" not in text
        assert "array(" not in text or "shape=" in text
    assert f"tol={float(st.tol)!r}" in repr(st)
    assert repr(st).startswith("Structure(pivot='center', k=4, ")
    assert "blocks={'k': 4," in repr(sample) and "NextTokenPredictor(n=60" in repr(sample)
    assert f"cond_A={eq.cond_A!r}" in repr(eq)
    assert repr(plain({"a": np.float64(0.5), "b": np.zeros((2, 3), np.float32)})) == (
        "{'a': 0.5, 'b': array(shape=(2, 3), dtype=float32)}"
    )


def test_import_stays_cheap():
    code = "import sys, allornone; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
