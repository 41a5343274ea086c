"""Figures of the audit report (matplotlib, Agg backend), written as PNG files.

Each ``fig_*`` takes the typed results and a path; it returns the path, or None when the
results have nothing to plot for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..report import BASE_C, ID_C, RAW_C, pyplot, save_figure
from .results import AuditResults


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


def fig_parallelism(res: AuditResults, path: Path) -> Path | None:
    ps = res.of_kind("parallelism")
    if not ps:
        return None
    names = [p.name for p in ps]
    y = np.arange(len(ps))
    fig, ax = pyplot().subplots(figsize=(8, 0.38 * len(ps) + 1.6))
    idv = [_num(p.identified.get("logodds_corr")) for p in ps]
    raw = [_num(p.raw.get("euclid_cos")) for p in ps]
    bid = [_num(p.baseline.get("logodds_corr")) for p in ps]
    braw = [_num(p.baseline.get("euclid_cos")) for p in ps]
    ax.barh(y - 0.2, idv, 0.4, color=ID_C, label="identified: Cov(f) cosine (log-ratio corr.)")
    ax.barh(y + 0.2, raw, 0.4, color=RAW_C, label="raw: Euclidean cosine (NOT identified)")
    ax.scatter(bid, y - 0.2, marker="|", s=200, color="k", label="random-pair baseline", zorder=3)
    ax.scatter(braw, y + 0.2, marker="|", s=200, color="k", zorder=3)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("mean pairwise cosine of the family's differences")
    ax.set_title("Parallelism per family against random token pairs")
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def fig_relations(res: AuditResults, path: Path) -> Path | None:
    ps = res.of_kind("relational")
    if not ps:
        return None
    keys = [
        ("dist_faithfulness", "distribution form (identified)", ID_C),
        ("refined_faithfulness", "refined least squares (raw)", RAW_C),
    ]
    x = np.arange(len(ps))
    fig, ax = pyplot().subplots(figsize=(max(5, 1.6 * len(ps) + 2), 3.8))
    w = 0.36
    for j, (k, lab, c) in enumerate(keys):
        vals = [_num((p.identified | p.raw).get(k)) for p in ps]
        ax.bar(x + (j - 0.5) * w, vals, w, color=c, label=lab)
    for i, p in enumerate(ps):
        ax.text(i, 1.02, f"cond. {_num(p.condition_size):.1e}", ha="center", fontsize=7)
    ax.set_xticks(x, [p.name for p in ps], fontsize=8, rotation=15)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("held-out faithfulness")
    ax.set_title("Relation maps: do they pick the model's own answer?")
    ax.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path)


def fig_probing(res: AuditResults, path: Path) -> Path | None:
    ps = res.of_kind("probing")
    if not ps:
        return None
    x = np.arange(len(ps))
    fig, ax = pyplot().subplots(figsize=(max(5, 1.8 * len(ps) + 2), 3.6))
    raw = [_num(p.raw.get("test_accuracy", p.raw.get("probe_acc_raw"))) for p in ps]
    idv = [
        _num(p.identified.get("logodds_test_accuracy", p.identified.get("probe_acc_identified")))
        for p in ps
    ]
    ax.bar(x - 0.2, raw, 0.4, color=RAW_C, label="probe on raw f (NOT identified)")
    ax.bar(x + 0.2, idv, 0.4, color=ID_C, label="probe on log-odds (identified)")
    for i, p in enumerate(ps):
        b = p.baseline.get("majority")
        if b is not None:
            ax.hlines(b, i - 0.4, i + 0.4, color="k", ls=":", lw=1)
    ax.set_xticks(x, [p.name for p in ps], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Linear probes (dotted: majority class)")
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def fig_steering(res: AuditResults, path: Path) -> Path | None:
    ps = [p for p in res.of_kind("steering") if "predicted_target" in p.details]
    if not ps:
        return None
    fig, axes = pyplot().subplots(1, len(ps), figsize=(4.2 * len(ps), 3.8), squeeze=False)
    for ax, p in zip(axes[0], ps):
        dt = {
            k: np.asarray(p.details[k], dtype=float)
            for k in ("predicted_off", "measured_off", "predicted_target", "measured_target")
        }
        ax.scatter(
            dt["predicted_off"],
            dt["measured_off"],
            s=6,
            color="grey",
            alpha=0.5,
            label="off-target tokens",
        )
        ax.scatter(
            dt["predicted_target"],
            dt["measured_target"],
            s=18,
            color=RAW_C,
            label="target tokens (top 20)",
        )
        lo = min(min(dt["predicted_off"]), min(dt["measured_off"]))
        hi = max(max(dt["predicted_target"]), max(dt["measured_target"]))
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.6, ls="--")
        ax.set_xlabel("predicted shift alpha g0(y)^T v")
        ax.set_ylabel("measured mean shift of log p(y|x)")
        ax.set_title(p.name, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Steering: target versus off-target shifts", fontsize=10)
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


FIGURES = {
    "spectrum": fig_spectrum,
    "parallelism": fig_parallelism,
    "relations": fig_relations,
    "probing": fig_probing,
    "steering": fig_steering,
    "equivalence": fig_equivalence,
}


def write_figures(res: AuditResults, folder: Path) -> dict[str, str]:
    """Write every figure that has data; returns ``name -> file name``."""
    out: dict[str, str] = {}
    for name, fn in FIGURES.items():
        p = fn(res, folder / f"{name}.png")
        if p is not None:
            out[name] = p.name
    return out
