"""Checks for property functions, in the spirit of scikit-learn's ``check_estimator``.

:func:`check_property` runs a property function on a model and on sampled members of its
equivalence class (:func:`allornone.sample_equivalent`, every junk mode, several seeds and
widths) and asserts the three promises of THEORY.md 5:

1. every ``identified`` statistic is the same in every equivalent model (the model and each
   sample, and any two samples of one width, whose contexts never span R^width); the
   verdict ``all_or_none`` is the same in any two samples of one width (``condition_size``
   itself is measured in each model's coordinates and may differ: it is NOT identified);
2. when the result says ``all_or_none``, the raw statistics the verdict protects are the same
   in every equivalent model (evaluated with the witness carried there);
3. when it does not, at least one adversarial sample changes some raw statistic.

A property written for this library, or a user's own, can be checked with one call::

    from allornone.testing import check_property
    check_property(my_property, spec, model)        # raises AssertionError on a violation

Use float64 models with planted structure (tests/planted.py): the tolerances are tied to
float64 rounding and to the spectrum of ``L``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import AllOrNoneError
from .equivalence import equivalence
from .predictor import NextTokenPredictor
from .properties import PropertyResult
from .registry import property_spec, registered_names
from .sampler import JUNK_MODES, sample_equivalent
from .structure import structure

__all__ = ["PROTECTED_RAW", "check_property", "default_rtol"]


class _ProtectedRaw(Mapping[str, "tuple[str, ...] | None"]):
    """Raw statistics whose value the all-or-none verdict protects, by property (``None``:
    all of them), read from each registered :class:`~allornone.registry.PropertySpec`
    (``protected_raw``): a user's registered property is covered too."""

    def __getitem__(self, name: str) -> tuple[str, ...] | None:
        if name not in registered_names():
            raise KeyError(name)
        return property_spec(name).protected_raw

    def __iter__(self) -> Iterator[str]:
        return iter(registered_names())

    def __len__(self) -> int:
        return len(registered_names())


#: Raw statistics each registered property's verdict protects (see :class:`_ProtectedRaw`).
PROTECTED_RAW: Mapping[str, tuple[str, ...] | None] = _ProtectedRaw()

#: Widths of the samples, relative to k (effective complexity) and d (the model's width).
DEFAULT_WIDTHS = ("k+2", "d", "d+3")


def default_rtol(model: NextTokenPredictor) -> float:
    """``10 sqrt(eps) max(1, sigma_1 / sigma_k)``: float rounding amplified by the spectrum of
    ``L`` (and by the random maps of the sampler, condition number 10)."""
    st = structure(model)
    s = st.singular_values
    kappa = float(s[0] / s[st.k - 1]) if st.k else 1.0
    return 10.0 * float(np.sqrt(model.eps)) * max(1.0, kappa)


def _close(a: float, b: float, rtol: float) -> bool:
    a, b = float(a), float(b)
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    if np.isinf(a) or np.isinf(b):
        return a == b
    return abs(a - b) <= rtol * max(1.0, abs(a), abs(b))


def _change(a: float, b: float) -> float:
    """Relative change, with the same floor as :func:`_close` (inf when one is NaN)."""
    a, b = float(a), float(b)
    if np.isnan(a) and np.isnan(b):
        return 0.0
    if not (np.isfinite(a) and np.isfinite(b)):
        return 0.0 if a == b else float("inf")
    return abs(a - b) / max(1.0, abs(a), abs(b))


def _width(spec: str | int, k: int, d: int) -> int:
    if isinstance(spec, (int, np.integer)):
        return max(int(spec), k + 2)
    spec = str(spec).replace(" ", "")
    if not spec or spec[0] not in "kd":
        raise AllOrNoneError(f"width {spec!r}: use an int or 'k+2', 'd', 'd-1', 'd+3', ...")
    base = k if spec[0] == "k" else d
    off = int(spec[1:]) if len(spec) > 1 else 0
    return max(base + off, k + 2)


def _carry(
    result: PropertyResult, eq: Any, spec: Any, kwargs: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The spec and options in the sample's coordinates: the witness's own ``carry_spec``
    (token pairs, labels, context rows and relation specs name tokens and contexts, which the
    sample shares, and are kept; a steering vector is replaced by the transported one; a
    probe is evaluated with its transported weights). No witness: kept."""
    w = result.witness
    if w is not None and callable(getattr(w, "carry_spec", None)):
        spec2, kw2 = w.carry_spec(eq, spec, kwargs)
        return spec2, dict(kw2)
    return spec, dict(kwargs)


def _protected(result: PropertyResult, raw_keys: Sequence[str] | None) -> list[str]:
    if raw_keys is not None:
        return [k for k in raw_keys if k in result.raw]
    rule = PROTECTED_RAW.get(result.property, None)
    if rule is None:
        return list(result.raw)
    return [k for k in result.raw if any(k.startswith(p) for p in rule)]


def check_property(
    fn: Callable[..., PropertyResult],
    spec: Any,
    model: NextTokenPredictor,
    *,
    junks: Sequence[str] = JUNK_MODES,
    seeds: Sequence[int] = (0, 1),
    widths: Sequence[str | int] = DEFAULT_WIDTHS,
    rtol: float | None = None,
    raw_keys: Sequence[str] | None = None,
    carry: Callable[..., tuple[Any, Mapping[str, Any]]] | None = None,
    **kwargs: Any,
) -> PropertyResult:
    """Check that ``fn(model, spec, **kwargs)`` keeps the promises of an all-or-none property.

    Parameters
    ----------
    fn : a property function ``fn(model, spec, **kwargs) -> PropertyResult``
    spec : what it is measured on (token pairs, labels, a steering vector, a RelationSpec)
    model : NextTokenPredictor (float64, planted structure)
    junks : junk modes of :func:`allornone.sample_equivalent` (default all four)
    seeds, widths : samples per junk mode (widths as ``"k+2"``, ``"d"``, ``"d+3"`` or ints;
        never below ``k + 2``)
    rtol : relative tolerance (default :func:`default_rtol`); values are compared with the
        floor 1 (``|a - b| <= rtol max(1, |a|, |b|)``)
    raw_keys : raw statistics the verdict protects (default: the registered spec's
        ``protected_raw``, :data:`PROTECTED_RAW`; an unregistered property: all of them)
    carry : ``carry(result, eq, spec, kwargs) -> (spec, kwargs)`` putting the spec into the
        sample's coordinates (default: steering vectors and probes are transported, the
        rest is kept)
    **kwargs : passed to ``fn``

    Returns
    -------
    PropertyResult
        ``fn``'s result on ``model``.

    Raises
    ------
    AssertionError
        Naming the property, the statistic, the junk mode and the values.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a property function, got {type(fn).__name__}")
    if not isinstance(model, NextTokenPredictor):
        raise TypeError(
            f"model must be a NextTokenPredictor, got {type(model).__name__}; pass "
            "allornone.NextTokenPredictor(F, G)"
        )
    bad = [j for j in junks if j not in JUNK_MODES]
    if bad or not junks:
        raise AllOrNoneError(f"junks must be a non-empty subset of {JUNK_MODES}, got {junks!r}")
    fname = getattr(fn, "__name__", repr(fn))
    r = fn(model, spec, **kwargs)
    if not isinstance(r, PropertyResult):
        raise AssertionError(f"{fname} returned {type(r).__name__}, not a PropertyResult")
    who = f"{fname} ({r.property} {r.name!r})"
    if r.all_or_none != (r.condition_size <= r.tol):
        raise AssertionError(
            f"{who}: all_or_none={r.all_or_none} but condition_size={r.condition_size:.3g} "
            f"and tol={r.tol:.3g}: the verdict must be condition_size <= tol"
        )
    tol = default_rtol(model) if rtol is None else float(rtol)
    st = structure(model)
    protected = _protected(r, raw_keys)
    carry_fn = carry or _carry
    adversarial = 0
    best: tuple[float, str, str] = (0.0, "", "")  # largest raw change seen on adversarial junk
    # the first sample of each width (and junk kind: none vs generic) -> compared with later
    first_at: dict[tuple[int, bool], tuple[PropertyResult, str]] = {}
    for junk in junks:
        for seed in seeds:
            for width in widths:
                dim = _width(width, st.k, model.d)
                where = f"junk={junk!r}, seed={seed}, width={dim}"
                s = sample_equivalent(model, dim=dim, seed=seed, junk=junk, structure=st)
                eq = equivalence(model, s.model)
                if not eq.equivalent:
                    raise AssertionError(
                        f"{who}: the sample ({where}) is not equivalent to the model "
                        f"({'; '.join(eq.reasons)}): use a float64 model with a sharp k"
                    )
                spec2, kw2 = carry_fn(r, eq, spec, kwargs)
                try:
                    r2 = fn(s.model, spec2, **dict(kw2))
                except Exception as err:  # noqa: BLE001 - reported with the sample
                    raise AssertionError(f"{who} raised on the sample ({where}): {err}") from err
                missing = set(r.identified) ^ set(r2.identified)
                if missing:
                    raise AssertionError(
                        f"{who}: identified statistics {sorted(missing)} are present on only "
                        f"one of the model and the sample ({where})"
                    )
                for key, val in r.identified.items():
                    if not _close(r2.identified[key], val, tol):
                        raise AssertionError(
                            f"{who}: identified statistic {key!r} is not invariant ({where}): "
                            f"{val!r} on the model, {r2.identified[key]!r} on the sample "
                            f"(rtol {tol:.2g})"
                        )
                # Two samples of one width are equivalent to each other, and their contexts do
                # not span R^width (width > k): identified values and the verdict must agree
                # between them too, not only with the model. (A sample without junk,
                # junk="zero", is compared only with another one: its M can be smaller, and a
                # condition on M_S cap N^perp can hold there and fail with junk.)
                ref, ref_where = first_at.setdefault((dim, junk == "zero"), (r2, where))
                if ref is not r2:
                    for key, val in ref.identified.items():
                        if not _close(r2.identified[key], val, tol):
                            raise AssertionError(
                                f"{who}: identified statistic {key!r} differs between two "
                                f"equivalent samples ({ref_where}: {val!r}; {where}: "
                                f"{r2.identified[key]!r}; rtol {tol:.2g})"
                            )
                    if ref.all_or_none != r2.all_or_none:
                        raise AssertionError(
                            f"{who}: the verdict differs between two equivalent samples "
                            f"({ref_where}: all_or_none={ref.all_or_none}, condition_size "
                            f"{ref.condition_size:.3g}; {where}: all_or_none={r2.all_or_none}, "
                            f"condition_size {r2.condition_size:.3g})"
                        )
                if r.all_or_none:
                    for key in protected:
                        if not _close(r2.raw.get(key, np.nan), r.raw[key], tol):
                            raise AssertionError(
                                f"{who}: all_or_none is True (condition_size "
                                f"{r.condition_size:.3g} <= tol {r.tol:.3g}) but raw statistic "
                                f"{key!r} changed ({where}): {r.raw[key]!r} on the model, "
                                f"{r2.raw.get(key)!r} on the sample (rtol {tol:.2g})"
                            )
                if junk == "adversarial":
                    adversarial += 1
                    for key, val in r.raw.items():
                        c = _change(r2.raw.get(key, np.nan), val)
                        if c > best[0]:
                            best = (c, key, where)
    if not r.all_or_none and "adversarial" in junks:
        if adversarial == 0:  # pragma: no cover - widths always allow k + 2
            raise AssertionError(f"{who}: no adversarial sample could be drawn")
        if best[0] <= tol:
            raise AssertionError(
                f"{who}: the condition fails (condition_size {r.condition_size:.3g} > tol "
                f"{r.tol:.3g}) but no adversarial sample (junk='adversarial', seeds {list(seeds)}"
                f", widths {list(widths)}) changed a raw statistic by more than rtol {tol:.2g} "
                f"(largest change {best[0]:.2g}{f' in {best[1]!r}' if best[1] else ''}): either "
                "the raw value is identified (file it under identified) or the condition is "
                "too strict"
            )
    if r.property in registered_names():  # every number it emits is declared once
        undeclared = property_spec(r.property).undeclared(r)
        if undeclared:
            raise AssertionError(
                f"{who}: statistics {undeclared} are not declared by the registered spec of "
                f"{r.property!r}: add a Statistic (meaning, identified or not) for each"
            )
    return r
