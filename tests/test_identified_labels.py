"""Labels that are right: what the report calls identified is equal across equivalent models
whose contexts do NOT span R^d, and what moves there (``condition_size``) is labelled NOT
identified everywhere (THEORY.md 4-5; issue 12: condition_size changed between two exactly
equivalent copies of SmolLM2, 0.8895 -> 0.9306).

The models are tests/planted.py predictors with rank-deficient F (``rank F = k + jf < d``),
and their equivalent samples of the same width d (contexts still rank-deficient there).
"""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted

from allornone import sample_equivalent, structure
from allornone.audit.explain import EXPLAIN
from allornone.properties import (
    LinearProbe,
    SteeringWitness,
    context_parallelism,
    parallelism,
    probe,
    steering,
    transport,
    vector_from_contexts,
)
from allornone.testing import check_property, default_rtol

SEEDS = (0, 1, 2)
JUNKS = ("random", "shuffle", "adversarial")


def _model(seed: int = 0):
    m, _ = planted(np.random.default_rng([seed, 77]), n=60, V=40, d=12, k=4, jf=3, jg=3)
    assert np.linalg.matrix_rank(m.F) == 7 < m.d  # the contexts do not span R^d
    return m


def _cases(m):
    labels = (m.log_odds(None, [3])[:, 0] > np.median(m.log_odds(None, [3])[:, 0])).astype(int)
    v = vector_from_contexts(m, list(range(10)), list(range(10, 20)))
    st = structure(m)
    return [
        ("parallelism", parallelism, [(0, 1), (2, 3), (4, 5), (6, 7)], {"baseline_draws": 0}),
        ("context", context_parallelism, [(0, 1), (2, 3), (4, 9)], {"baseline_draws": 0}),
        ("probing", probe, labels, {}),
        ("steering", steering, v + st.J_g[:, 0], {"alpha": 2.0, "targets": [0, 1, 2]}),
    ]


def _on_sample(r, fn, spec, kw, m, s):
    from allornone import equivalence

    eq = equivalence(m, s.model)
    assert eq.equivalent
    kw = dict(kw)
    if isinstance(r.witness, SteeringWitness):
        spec = transport(r, eq)
    elif isinstance(r.witness, LinearProbe):
        tp = transport(r, eq)
        kw["weights"] = (tp.W, tp.b)
    return fn(s.model, spec, **kw)


@pytest.mark.parametrize("case", range(4))
def test_identified_values_agree_across_rank_deficient_samples(case: int) -> None:
    m = _model()
    st = structure(m)
    name, fn, spec, kw = _cases(m)[case]
    r = fn(m, spec, **kw)
    rtol = default_rtol(m)
    results = []
    for junk in JUNKS:
        for seed in SEEDS:
            s = sample_equivalent(m, dim=m.d, seed=seed, junk=junk, structure=st)
            assert np.linalg.matrix_rank(s.model.F) < s.model.d  # still not spanning R^d
            results.append(_on_sample(r, fn, spec, kw, m, s))
    for r2 in results:
        assert set(r2.identified) == set(r.identified)
        for key, val in r.identified.items():
            assert abs(r2.identified[key] - val) <= rtol * max(1.0, abs(val)), (name, key)
        assert r2.all_or_none == results[0].all_or_none, name
    sizes = np.array([r2.condition_size for r2 in results])
    if name in ("parallelism", "context"):
        # what issue 12 saw: the size moves between exactly equivalent models
        assert not results[0].all_or_none
        assert np.ptp(sizes) > 1e-3, sizes


def test_check_property_compares_samples_with_each_other() -> None:
    """check_property on a rank-deficient model: the sample-vs-sample comparison runs (and
    passes for the library's properties)."""
    m = _model(1)
    for _, fn, spec, kw in _cases(m):
        check_property(fn, spec, m, seeds=(0, 1), widths=("d",), **kw)


def test_check_property_catches_a_verdict_that_moves() -> None:
    """A property whose verdict reads the (non-identified) size on a threshold in the middle
    of its spread is rejected."""
    import dataclasses

    m = _model(2)
    st = structure(m)
    spec = [(0, 1), (2, 3), (4, 5), (6, 7)]
    sizes = [
        parallelism(
            sample_equivalent(m, dim=m.d, seed=s, junk="random", structure=st).model,
            spec,
            baseline_draws=0,
        ).condition_size
        for s in (0, 1)
    ]
    cut = float(np.mean(sizes))

    def by_size(model, pairs, **kw):
        r = parallelism(model, pairs, **kw)
        return dataclasses.replace(r, tol=cut, all_or_none=r.condition_size <= cut)

    with pytest.raises(AssertionError, match="verdict differs between two equivalent samples"):
        check_property(
            by_size, spec, m, junks=("random",), seeds=(0, 1), widths=("d",), baseline_draws=0
        )


def test_condition_size_is_labelled_not_identified_everywhere(tmp_path) -> None:
    """The glossary, the report legend and the schema document agree."""
    from pathlib import Path

    assert EXPLAIN["condition_size"].identified is False
    assert EXPLAIN["outside_M"].identified is False
    schema = (Path(__file__).resolve().parents[1] / "docs" / "RESULTS_SCHEMA.md").read_text()
    row = next(line for line in schema.splitlines() if line.startswith("| `condition_size`"))
    assert "NOT identified" in row
    from audit_helpers import tiny_args, tiny_model

    from allornone.audit import pipeline
    from allornone.cli import main

    real = pipeline.load_model
    pipeline.load_model = lambda cfg: tiny_model()
    try:
        assert main(tiny_args(tmp_path / "rep")) == 0
    finally:
        pipeline.load_model = real
    md = (tmp_path / "rep" / "report.md").read_text()
    legend = [line for line in md.splitlines() if line.startswith("- `condition_size`")]
    assert legend and all(line.endswith("(NOT identified)") for line in legend)
    assert "chance level of 'draws'" not in md and "(random items)" not in md
    assert "- `baseline draws`: number of random draws" in md
    assert "- `baseline majority`: accuracy of always answering the majority class" in md
    steer = next(line for line in md.splitlines() if line.startswith("| name | raw target_shift"))
    heads = [h.strip() for h in steer.strip("|").split("|")]
    assert len(heads) == len(set(heads)), heads  # no header twice
    assert "check prediction_error" in heads and "v_norm" in heads
