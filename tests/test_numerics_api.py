"""Numerics at the API (issue 25, case 8): huge factors, meta tensors and impossible sample
widths give the right answer or one clear line, never a silent k = 0 or a raw error."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

import allornone as aon
from allornone import AllOrNoneError


def _factors(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 8))
    return F, rng.standard_normal((70, 8))


@pytest.mark.parametrize("scale", [1e-250, 1e-200, 1e160, 1e200, 1e250])
def test_structure_of_huge_or_tiny_factors_keeps_k(scale: float) -> None:
    F, G = _factors()
    ref = aon.structure(aon.NextTokenPredictor(F, G))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        st = aon.structure(aon.NextTokenPredictor(F * scale, G))
    assert ref.k == 3
    assert st.k == ref.k and st.energy_rank == ref.energy_rank and st.dim_M == ref.dim_M
    assert st.tol == pytest.approx(ref.tol, rel=1e-6)
    # the same subspace E (its projector), up to rounding
    np.testing.assert_allclose(st.E @ st.E.T, ref.E @ ref.E.T, atol=1e-10)


@pytest.mark.parametrize(
    ("a", "b", "side"), [(1e200, 1e200, "overflow"), (1e-200, 1e-200, "underflow")]
)
def test_log_odds_beyond_float64_are_refused_in_one_line(a: float, b: float, side: str) -> None:
    F, G = _factors()
    with pytest.raises(AllOrNoneError, match=f"would {side} float64") as err:
        aon.structure(aon.NextTokenPredictor(F * a, G * b))
    assert "divide F or G by a constant" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_a_meta_tensor_is_refused_in_one_line(dtype: torch.dtype) -> None:
    F = torch.empty(40, 8, device="meta", dtype=dtype)
    G = torch.empty(70, 8, dtype=dtype)
    with pytest.raises(AllOrNoneError, match=r"F is a torch tensor on the meta device \(shape"):
        aon.NextTokenPredictor(F, G)
    with pytest.raises(AllOrNoneError, match="G is a torch tensor on the meta device"):
        aon.NextTokenPredictor(torch.zeros(40, 8, dtype=dtype), G.to("meta"))


def test_an_impossible_sample_width_is_refused_up_front() -> None:
    F, G = _factors()
    m = aon.NextTokenPredictor(F, G)
    t0 = time.monotonic()
    with pytest.raises(AllOrNoneError, match=r"^dim=10000000: a sample that wide needs about") as e:
        aon.sample_equivalent(m, dim=10**7, seed=0)
    assert time.monotonic() - t0 < 10  # refused before any allocation, not after growing
    assert "PiB of memory" in str(e.value) and "pass a smaller dim" in str(e.value)
    # a width that fits still works
    s = aon.sample_equivalent(m, dim=12, seed=0)
    assert s.model.d == 12
