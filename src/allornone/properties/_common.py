"""Helpers shared by the property modules: token resolution, splits, identified features.

Nothing here forms an n x V matrix: the log-odds geometry is reached through the triangular
factors of ``F`` and ``G0`` (:func:`allornone.linalg.r_factor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import AllOrNoneError, default_equiv_tol
from ..predictor import NextTokenPredictor, Pivot, as_predictor
from ..structure import Structure
from ..structure import structure as compute_structure

Token = int | str


def check_model(model: Any, name: str = "model") -> NextTokenPredictor:
    """``model`` as a predictor (an :class:`~allornone.EquivalentSample` gives its ``.model``);
    anything else raises a ``TypeError`` that names the fix."""
    return as_predictor(model, name)


def resolve_structure(
    model: NextTokenPredictor, st: Structure | None, pivot: Pivot = "center"
) -> Structure:
    """``st`` when given (checked against ``model``), else ``structure(model, pivot=pivot)``."""
    if st is None:
        return compute_structure(model, pivot=pivot)
    if not isinstance(st, Structure):
        raise TypeError(
            f"structure must be an allornone.Structure, got {type(st).__name__}; pass "
            "structure=allornone.structure(model) or leave it out"
        )
    if st.model is not model and not st.model.same_G(model):
        raise AllOrNoneError(
            f"structure was computed on a model with other unembeddings (d={st.model.d}, "
            f"V={st.model.V}; this one: d={model.d}, V={model.V}): pass "
            "structure=allornone.structure(model)"
        )
    return st


def default_tol(model: NextTokenPredictor, tol: float | None) -> float:
    """Verdict tolerance: ``sqrt(eps)`` of the model's source dtype unless given."""
    return float(tol) if tol is not None else default_equiv_tol(model.eps)


def resolve_one(model: NextTokenPredictor, tok: Any, *, rows: bool = False) -> int | None:
    """Index of one token (or context, ``rows=True``) label/index; None when unknown."""
    try:
        idx = model.row_indices([tok]) if rows else model.col_indices([tok])
    except AllOrNoneError:
        return None
    return int(idx[0]) if len(idx) == 1 else None


def resolve_pairs(
    model: NextTokenPredictor, pairs: Sequence[Sequence[Any]], *, rows: bool = False
) -> tuple[np.ndarray, list[dict]]:
    """Validate (a, b) pairs of tokens (or contexts): returns indices (m, 2) and exclusions.

    Pairs with an unknown item, identical items or repeated pairs are dropped and recorded.
    """
    what = "context" if rows else "token"
    keep: list[tuple[int, int]] = []
    excluded: list[dict] = []
    seen: set[tuple[int, int]] = set()
    for p in pairs:
        if isinstance(p, str) or len(p) != 2:
            raise AllOrNoneError(f"each pair must be (a, b), got {p!r}")
        a, b = p
        ia, ib = resolve_one(model, a, rows=rows), resolve_one(model, b, rows=rows)
        if ia is None or ib is None:
            bad = a if ia is None else b
            excluded.append({"item": (a, b), "reason": f"{what} {bad!r} not found"})
        elif ia == ib:
            excluded.append({"item": (a, b), "reason": f"identical {what}s in a pair"})
        elif (ia, ib) in seen:
            excluded.append({"item": (a, b), "reason": "repeated pair"})
        else:
            seen.add((ia, ib))
            keep.append((ia, ib))
    return np.array(keep, dtype=int).reshape(-1, 2), excluded


def resolve_tokens(model: NextTokenPredictor, tokens: Any, name: str) -> np.ndarray:
    """Token selection (labels or indices) -> unique indices; errors name the missing ones."""
    if tokens is None:
        raise AllOrNoneError(f"{name} is empty: pass at least one token")
    idx = model.col_indices(tokens)
    if len(idx) == 0:
        raise AllOrNoneError(f"{name} is empty: pass at least one token")
    _, first = np.unique(idx, return_index=True)
    return idx[np.sort(first)]


def rel(diff: np.ndarray, ref: np.ndarray) -> float:
    """``||diff|| / ||ref||`` (Frobenius); ``||diff||`` when ``ref`` is zero."""
    den = float(np.linalg.norm(ref))
    num = float(np.linalg.norm(diff))
    return num / den if den > 0 else num


def split(
    n: int,
    test_fraction: float,
    seed: int,
    *,
    strata: np.ndarray | None = None,
    min_train: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split of ``range(n)`` (stratified when ``strata`` is given).

    ``test_fraction=0`` puts everything in train (test is empty).
    """
    if not 0 <= test_fraction < 1:
        raise AllOrNoneError(f"test_fraction must be in [0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    groups = (
        [np.arange(n)]
        if strata is None
        else [np.flatnonzero(strata == c) for c in np.unique(strata)]
    )
    test: list[int] = []
    for g in groups:
        g = rng.permutation(g)
        n_test = int(round(test_fraction * len(g)))
        if test_fraction > 0 and len(g) >= 2:
            n_test = min(max(n_test, 1), len(g) - 1)
        else:
            n_test = 0
        test.extend(g[:n_test].tolist())
    test_arr = np.sort(np.array(test, dtype=int))
    train_arr = np.setdiff1d(np.arange(n), test_arr)
    if len(train_arr) < min_train:
        raise AllOrNoneError(
            f"only {len(train_arr)} training items after the split; need {min_train}"
        )
    return train_arr, test_arr


def canonical_features(Z: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Rows of ``Z`` (n x r) in canonical coordinates ``U S`` of its thin SVD, signs fixed.

    Two matrices with the same Gram ``Z Z^T`` (e.g. the rows of ``L`` seen through two
    different factorisations) get the same features (up to rounding, for distinct singular
    values), so any fit on them is identified. Columns below ``rtol * s_max`` are dropped.
    """
    U, s, _ = np.linalg.svd(Z, full_matrices=False)
    r = int((s > rtol * s[0]).sum()) if s.size and s[0] > 0 else 0
    U = U[:, :r]
    piv = np.abs(U).argmax(axis=0)
    signs = np.sign(U[piv, np.arange(r)])
    signs[signs == 0] = 1.0
    return U * (s[:r] * signs)
