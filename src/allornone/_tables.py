"""Tables (pandas) and notebook views of results, and reprs with plain numbers.

:class:`TableMixin` gives :class:`~allornone.Structure`, :class:`~allornone.Equivalence` and
:class:`~allornone.properties.PropertyResult` a ``to_frame()`` (a pandas DataFrame) and a
``_repr_html_()`` (the view a notebook shows); :func:`to_frame` puts a list (or a dict
``name -> result``) of them in one table, one row per result. :class:`PlainRepr` (which
TableMixin includes) makes ``repr()`` print plain Python numbers (``tol=9.6e-15``, not
``tol=np.float64(9.6e-15)``) and arrays as ``array(shape=(..), dtype=..)``.

Which columns are identified
----------------------------
Every frame lists its identified columns (those computed from the distribution alone: equal
in every equivalent model) in ``frame.attrs["identified"]`` and the others that describe the
model's own coordinates in ``frame.attrs["raw"]``; the remaining columns are labels and
settings ("meta"). For a :class:`~allornone.properties.PropertyResult` the column names say it
too: flat names with a prefix, ``"identified.<stat>"``, ``"raw.<stat>"`` and
``"baseline.<stat>"`` (the chance baseline), so that a raw and an identified statistic of the
same name (steering's ``mean_abs_shift``) never collide and a list of results of different
properties concatenates into one flat table. Meta columns have no prefix: ``property``,
``name``, ``all_or_none``, ``condition_size``, ``tol``, ``condition``, ``n_excluded`` (and
``item`` in per-item tables).

pandas is imported only when a frame is built, so ``import allornone`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import html
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .registry import property_spec, registered_names

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PlainRepr", "TableMixin", "to_frame"]

#: Singular values shown in the spectrum line of a Structure's notebook view.
HTML_SPECTRUM = 8

_STYLE = (
    "border-collapse:collapse;font-family:monospace;font-size:12px;margin:2px 0;text-align:left"
)
_CELL = "padding:1px 8px;border-bottom:1px solid #ddd;"


# ---------------------------------------------------------------------- plain reprs
class _ArrayStub:
    """Stands in for an array inside a repr: ``array(shape=(3, 4), dtype=float64)``."""

    def __init__(self, a: np.ndarray) -> None:
        self.text = f"array(shape={tuple(int(s) for s in a.shape)}, dtype={a.dtype})"

    def __repr__(self) -> str:
        return self.text


def plain(x: Any) -> Any:
    """``x`` with numpy scalars as Python scalars, arrays as stubs, containers walked."""
    if isinstance(x, np.ndarray):
        return _ArrayStub(x)
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {plain(k): plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(plain(v) for v in x)
    return x


def _plain_repr(self: Any) -> str:
    parts = ", ".join(
        f"{f.name}={plain(getattr(self, f.name))!r}" for f in dataclasses.fields(self) if f.repr
    )
    return f"{type(self).__name__}({parts})"


class PlainRepr:
    """Mixin for dataclasses: ``repr()`` with plain numbers (fields with ``repr=True``).

    The dataclass decorator writes its own ``__repr__`` unless the class defines one, so the
    mixin puts its ``__repr__`` on each subclass when the class is created (before the
    decorator runs); a class that writes its own ``__repr__`` keeps it.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = _plain_repr  # type: ignore[method-assign]


# ---------------------------------------------------------------------- the mixin
class TableMixin(PlainRepr):
    """``to_frame()`` and ``_repr_html_()`` for Structure, Equivalence and PropertyResult."""

    def to_frame(self, *, per_item: bool = True) -> pd.DataFrame:
        """This result as a pandas DataFrame (see the module docstring for the columns).

        - ``Structure``: one row per singular value of ``L`` (``i`` from 1, ``sigma``,
          ``relative_sigma`` = sigma / sigma_max, ``cumulative_energy``, ``in_effective_k``);
          ``attrs`` holds :meth:`~allornone.Structure.summary` (``k``, ``dim_J_g``, ...).
          With ``per_item=False``: the one summary row.
        - ``Equivalence``: one summary row (:meth:`~allornone.Equivalence.summary`).
        - ``PropertyResult``: with ``per_item=True`` (default) one row per item measured
          where the result carries per-item numbers (parallelism: per pair, its statistics
          averaged over the other pairs; steering: per target token; relational: per
          subject; probing: per class of the probe); otherwise, and with
          ``per_item=False``, one summary row with every raw, identified and baseline value.
          The per-item rows are the property's own (its registered spec's ``items``).
        """
        kind = _kind(self)
        if kind == "structure":
            return _spectrum_frame(self) if per_item else _structure_row(self)
        if kind == "equivalence":
            return _equivalence_row(self)
        if per_item:
            items = _property_items(self)
            if items is not None:
                return items
        return _property_row(self)

    def _repr_html_(self) -> str:
        kind = _kind(self)
        if kind == "structure":
            return _structure_html(self)
        if kind == "equivalence":
            return _equivalence_html(self)
        return _property_html(self)


def _kind(obj: Any) -> str:
    names = {f.name for f in dataclasses.fields(obj)}
    if "singular_values" in names:
        return "structure"
    if "residual_g" in names:
        return "equivalence"
    if {"raw", "identified"} <= names:
        return "property"
    raise TypeError(f"no table form for {type(obj).__name__}")


def _frame(rows: list[dict] | dict, identified: list[str], raw: list[str], **attrs: Any):
    import pandas as pd

    df = pd.DataFrame(rows if isinstance(rows, list) else [rows])
    df.attrs.update(attrs)
    df.attrs["identified"] = [c for c in identified if c in df.columns]
    df.attrs["raw"] = [c for c in raw if c in df.columns]
    return df


# ---------------------------------------------------------------------- Structure
#: Summary entries of a Structure that the distribution determines (the spectrum of ``L``).
STRUCTURE_IDENTIFIED = ("k", "dim_E", "energy_rank", "gap", "sharp")
#: Summary entries that depend on the factorisation (widths of f and g, junk).
STRUCTURE_RAW = ("d", "dim_M", "dim_N", "dim_J_f", "dim_J_g", "tol")


def _spectrum_frame(st: Any):
    s = np.asarray(st.singular_values, dtype=float)
    smax = float(s[0]) if s.size else 1.0
    energy = np.cumsum(s**2) / float(np.sum(s**2)) if s.size else s
    rows = [
        {
            "i": i + 1,
            "sigma": float(s[i]),
            "relative_sigma": float(s[i] / smax) if smax > 0 else float("nan"),
            "cumulative_energy": float(energy[i]),
            "in_effective_k": bool(i < st.k),
        }
        for i in range(s.size)
    ]
    cols = ["i", "sigma", "relative_sigma", "cumulative_energy", "in_effective_k"]
    df = _frame(rows, cols[1:], [], **plain(st.summary()))
    return df.reindex(columns=cols)


def _structure_row(st: Any):
    return _frame(plain(st.summary()), list(STRUCTURE_IDENTIFIED), list(STRUCTURE_RAW))


# ---------------------------------------------------------------------- Equivalence
#: Equivalence entries about the two distributions (not about the chosen factors).
EQUIVALENCE_IDENTIFIED = (
    "equivalent",
    "k_a",
    "k_b",
    "max_logodds_gap",
    "rel_logodds_gap",
    "mean_kl",
)
#: Entries that depend on the factorisations (the recovered map and its residuals).
EQUIVALENCE_RAW = ("residual_f", "residual_g", "residual_f_reverse", "cond_A")


def _equivalence_row(eq: Any):
    row = plain(eq.summary())
    row["reasons"] = "; ".join(row.get("reasons", []))
    return _frame(row, list(EQUIVALENCE_IDENTIFIED), list(EQUIVALENCE_RAW))


# ---------------------------------------------------------------------- PropertyResult
def _meta(r: Any) -> dict[str, Any]:
    return {
        "property": r.property,
        "name": r.name,
        "all_or_none": bool(r.all_or_none),
        "condition_size": float(r.condition_size),
        "tol": float(r.tol),
    }


def _property_row(r: Any):
    row = _meta(r)
    row["condition"] = r.condition
    row["n_excluded"] = len(r.excluded)
    ident = [f"identified.{k}" for k in r.identified]
    raw = [f"raw.{k}" for k in r.raw]
    row.update({f"raw.{k}": plain(v) for k, v in r.raw.items()})
    row.update({f"identified.{k}": plain(v) for k, v in r.identified.items()})
    row.update({f"baseline.{k}": plain(v) for k, v in r.baseline.items()})
    return _frame(row, ident, raw)


def _property_items(r: Any):
    """One row per item measured (the property's declared ``items``), or None when the
    result has no per-item numbers."""
    if r.property not in registered_names():
        return None
    items = property_spec(r.property).items
    if items is None:
        return None
    try:
        built = items(r.details)
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # details of another shape: fall back to the summary row
    if built is None:
        return None
    rows, ident, raw = built
    base = _meta(r)
    rows = [{**base, **row} for row in rows]
    return _frame(rows, ident, raw)


def off_diagonal_means(C: np.ndarray) -> np.ndarray:
    """Row means of a square matrix without its diagonal (NaN for a row with nothing)."""
    C = np.array(C, dtype=float)
    np.fill_diagonal(C, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row of NaN: mean NaN
        return np.nanmean(C, axis=1)


# ---------------------------------------------------------------------- lists
def to_frame(results: Sequence[Any] | Mapping[str, Any], *, per_item: bool = False):
    """Several results in one pandas DataFrame.

    Parameters
    ----------
    results : sequence, or mapping ``name -> result``
        :class:`~allornone.properties.PropertyResult`, :class:`~allornone.Structure` or
        :class:`~allornone.Equivalence` objects (kinds may be mixed). A mapping adds a
        ``key`` column with its keys.
    per_item : bool
        False (default): one row per result (each result's summary row). True: each
        result's own ``to_frame()`` (one row per item measured, per singular value for a
        Structure), stacked.

    Returns
    -------
    DataFrame
        Columns as in the module docstring (``identified.*``, ``raw.*``, ``baseline.*`` and
        meta for property results); ``attrs["identified"]`` and ``attrs["raw"]`` list the
        identified and raw columns of the whole table.
    """
    import pandas as pd

    if isinstance(results, Mapping):
        keys: list[Any] | None = list(results.keys())
        items = list(results.values())
    elif isinstance(results, Sequence) and not isinstance(results, str | bytes):
        keys, items = None, list(results)
    else:
        raise TypeError(
            f"to_frame() takes a list or a dict of results, got {type(results).__name__}; "
            "for one result call result.to_frame()"
        )
    frames = []
    for i, item in enumerate(items):
        if not isinstance(item, TableMixin):
            raise TypeError(
                f"to_frame() item {keys[i] if keys else i} is a {type(item).__name__}, not a "
                "PropertyResult, Structure or Equivalence"
            )
        df = item.to_frame(per_item=per_item)
        if keys is not None:
            df.insert(0, "key", [keys[i]] * len(df))
        frames.append(df)
    ident: list[str] = []
    raw: list[str] = []
    for df in frames:
        ident += [c for c in df.attrs.get("identified", []) if c not in ident]
        raw += [c for c in df.attrs.get("raw", []) if c not in raw]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs = {"identified": ident, "raw": raw}
    return out


# ---------------------------------------------------------------------- HTML
def _fmt(x: Any) -> str:
    x = plain(x)
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.4g}"
    if x is None:
        return "-"
    return str(x)


def _table(title: str, verdict: str, good: bool | None, rows: list[tuple], note: str = "") -> str:
    """A small HTML table: a title, a coloured verdict line, rows of cells, a note."""
    colour = {True: "#1a7f37", False: "#b3261e", None: "#555"}[good]
    width = max((len(r) - (r[0] == "#header") for r in rows), default=2)
    out = [f'<table style="{_STYLE}">']
    out.append(
        f'<tr><th colspan="{width}" style="{_CELL}font-size:13px">{html.escape(title)}</th></tr>'
    )
    out.append(
        f'<tr><td colspan="{width}" style="{_CELL}color:{colour};font-weight:bold">'
        f"{html.escape(verdict)}</td></tr>"
    )
    for r in rows:
        tag = "th" if r and r[0] == "#header" else "td"
        cells = r[1:] if tag == "th" else r
        tds = "".join(f'<{tag} style="{_CELL}">{html.escape(_fmt(c))}</{tag}>' for c in cells)
        out.append(f"<tr>{tds}</tr>")
    if note:
        out.append(
            f'<tr><td colspan="{width}" style="{_CELL}color:#555">{html.escape(note)}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


def _structure_html(st: Any) -> str:
    s = np.asarray(st.singular_values, dtype=float)
    smax = float(s[0]) if s.size else 1.0
    shown = min(s.size, max(HTML_SPECTRUM, st.k + 1))
    spectrum = ", ".join(
        f"{v / smax:.3g}" + (" |" if i + 1 == st.k and i + 1 < shown else "")
        for i, v in enumerate(s[:shown])
    )
    more = f", ... ({s.size} values)" if s.size > shown else ""
    rows = [
        ("contexts n, tokens V, width d", f"{st.model.n}, {st.model.V}, {st.d}"),
        ("effective complexity k", st.k),
        (f"energy rank ({st.energy:.3g} of the energy)", st.energy_rank),
        ("dim M, dim N", f"{st.dim_M}, {st.dim_N}"),
        ("dim J_f, dim J_g (junk)", f"{st.dim_J_f}, {st.dim_J_g}"),
        ("tol (relative), gap", f"{st.tol:.3g}, {st.gap:.3g}"),
        ("sigma / sigma_max (| = cut at k)", spectrum + more),
    ]
    return _table(f"Structure (pivot {st.pivot!s})", st.decision, st.sharp, rows)


def _equivalence_html(eq: Any) -> str:
    verdict = (
        "equivalent: same next-token distribution"
        if eq.equivalent
        else ("NOT equivalent: " + "; ".join(eq.reasons))
    )
    rows = [
        ("k_a, k_b", f"{eq.k_a}, {eq.k_b}"),
        ("max log-odds gap (relative)", f"{eq.max_logodds_gap:.3g} ({eq.rel_logodds_gap:.3g})"),
        ("mean KL (nats)", eq.mean_kl),
        ("contexts evaluated", eq.rows_evaluated),
        ("map residual f, g", f"{eq.residual_f:.3g}, {eq.residual_g:.3g}"),
        ("cond A", eq.cond_A),
        ("tol", eq.tol),
    ]
    return _table("Equivalence", verdict, bool(eq.equivalent), rows)


def _property_html(r: Any) -> str:
    verdict = (
        "all-or-none: the raw value holds in every equivalent model or in none"
        if r.all_or_none
        else "NOT all-or-none: an equivalent model can change the raw value"
    )
    rows: list[tuple] = [("#header", "statistic", "kind", "value", "baseline")]
    for kind, stats in (("identified", r.identified), ("raw", r.raw)):
        for key, val in stats.items():
            rows.append((key, kind, val, r.baseline.get(key)))
    rows.append(("condition size (tol)", "", r.condition_size, r.tol))
    note = f"condition: {r.condition}"
    if r.excluded:
        note += f"; {len(r.excluded)} item(s) excluded"
    return _table(f"{r.property}: {r.name}", verdict, bool(r.all_or_none), rows, note)
