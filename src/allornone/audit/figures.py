"""Figures of the audit report (matplotlib, Agg backend), written as PNG files.

Each figure takes the typed results and a path; it returns the path, or None when the
results have nothing to plot for it. The properties' figures are their audit steps' own
(:mod:`allornone.audit.builtin`); this module draws the spectrum and the equivalence class.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..report import BASE_C, ID_C, RAW_C, pyplot, save_figure
from .results import AuditResults
from .step import audit_steps


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def fig_spectrum(res: AuditResults, path: Path) -> Path | None:
    st = res.structure
    sv = st.singular_values if st.singular_values is not None else []
    s = np.array([_num(v) for v in sv])
    if s.size == 0:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.semilogy(np.arange(1, s.size + 1), s / s[0], color=ID_C, lw=1.5, label="main contexts")
    ax.axvline(st.k, color="k", ls="--", lw=1, label=f"k = {st.k}")
    ax.axvline(
        st.energy_rank,
        color=BASE_C,
        ls=":",
        lw=1.5,
        label=f"99% energy rank = {st.energy_rank}",
    )
    ax.set_xlabel("index i")
    ax.set_ylabel("sigma_i / sigma_1")
    ax.set_title(f"Spectrum of the log-odds matrix L (n={st.n}, V={st.V}, d={st.d})")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def fig_equivalence(res: AuditResults, path: Path) -> Path | None:
    demo = res.equivalence_demo
    if demo is None or not demo.models:
        return None
    models = demo.models
    stats = list(demo.stat_identified.keys())
    fig, axes = pyplot().subplots(1, len(stats), figsize=(2.1 * len(stats), 3.6), squeeze=False)
    labels = [f"{m.label}\n(d={m.width})" for m in models]
    for ax, s in zip(axes[0], stats):
        ident = demo.stat_identified[s]
        vals = [_num(m.stats.get(s)) for m in models]
        ax.bar(np.arange(len(models)), vals, color=ID_C if ident else RAW_C)
        ax.set_xticks(np.arange(len(models)), labels, fontsize=6, rotation=60)
        ax.set_title(f"{s}\n{'identified' if ident else 'NOT identified'}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(
        "Equivalent models (same distribution, other widths): raw statistics move, "
        "identified ones stay fixed",
        fontsize=9,
    )
    return save_figure(fig, path)


def figures() -> dict[str, Callable[[AuditResults, Path], Path | None]]:
    """Every figure of the report, in order: the spectrum, each registered audit step's
    figure (:class:`~allornone.audit.step.AuditStep`), the equivalence class."""
    out: dict[str, Callable[[AuditResults, Path], Path | None]] = {"spectrum": fig_spectrum}
    for step in audit_steps():
        if step.figure is not None:
            out[step.figure_file] = step.figure
    out["equivalence"] = fig_equivalence
    return out


def write_figures(res: AuditResults, folder: Path) -> dict[str, str]:
    """Write every figure that has data; returns ``name -> file name``."""
    out: dict[str, str] = {}
    for name, fn in figures().items():
        p = fn(res, folder / f"{name}.png")
        if p is not None:
            out[name] = p.name
    return out
