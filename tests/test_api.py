"""The public API as a notebook user meets it: predictors or samples everywhere, clear type
errors, the theory shipped with the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import allornone as aon


def _planted(seed: int = 0) -> aon.NextTokenPredictor:
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((60, 3)) @ rng.standard_normal((3, 8))
    G = rng.standard_normal((90, 8))
    return aon.NextTokenPredictor(F, G)


def test_a_sample_is_accepted_wherever_a_predictor_is():
    m = _planted()
    s = aon.sample_equivalent(m, dim=12, seed=1)
    eq = aon.equivalence(m, s)
    assert eq.equivalent and eq.residual_f < 1e-10
    assert aon.structure(s).k == aon.structure(m).k == 3
    again = aon.sample_equivalent(s, dim=10, seed=2)  # a sample of a sample
    assert aon.equivalence(s, again).equivalent
    assert aon.as_predictor(s) is s.model


@pytest.mark.parametrize("bad", [np.eye(3), "smollm2", None, 3.0])
def test_wrong_types_raise_a_type_error_that_names_the_fix(bad):
    with pytest.raises(TypeError, match="NextTokenPredictor"):
        aon.structure(bad)
    with pytest.raises(TypeError, match="b must be a NextTokenPredictor"):
        aon.equivalence(_planted(), bad)
    with pytest.raises(aon.AllOrNoneError):  # still the package's own error type
        aon.sample_equivalent(bad)


@pytest.mark.parametrize("dim", [3.7, "8", True])
def test_sample_width_must_be_an_integer(dim):
    with pytest.raises(TypeError, match="dim must be an integer"):
        aon.sample_equivalent(_planted(), dim=dim)
    assert aon.sample_equivalent(_planted(), dim=np.int64(9), seed=0).model.d == 9


def test_the_theory_ships_with_the_package_and_matches_the_docs():
    shipped = aon.theory_path()
    docs = Path(__file__).resolve().parents[1] / "docs" / "THEORY.md"
    assert shipped.is_file()
    assert shipped.read_text() == docs.read_text(), (
        "src/allornone/THEORY.md must be a copy of docs/THEORY.md: cp docs/THEORY.md "
        "src/allornone/THEORY.md"
    )


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        aon.nonsense  # noqa: B018
    assert {"models", "properties", "audit", "family", "testing"} <= set(dir(aon))


def test_properties_accept_an_equivalent_sample_and_name_the_fix_for_anything_else():
    from planted import planted

    from allornone.properties import parallelism, probe, steering

    model, _ = planted(np.random.default_rng(3))
    sample = aon.sample_equivalent(model, seed=1)
    labels = (model.F[:, 0] > 0).astype(int)
    a, b = probe(sample, labels), probe(sample.model, labels)
    assert a.identified == b.identified
    v = model.F[0] - model.F[1]
    assert steering(sample, v).identified == steering(sample.model, v).identified
    with pytest.raises(TypeError, match="NextTokenPredictor"):
        parallelism(np.zeros((3, 3)), [(0, 1), (2, 3)])


def test_import_is_cheap_and_submodules_load_on_first_use():
    import subprocess
    import sys

    code = (
        "import sys, allornone as aon\n"
        "heavy = [m for m in ('torch', 'transformers', 'gensim', 'matplotlib', 'pandas') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert 'allornone.properties' not in sys.modules\n"
        "aon.properties.parallelism\n"
        "assert 'allornone.properties' in sys.modules and 'torch' not in sys.modules\n"
        "print(aon.models.load)\n"
        "assert 'torch' in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "function load" in out.stdout
