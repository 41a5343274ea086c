"""The audit step of parallelism (THEORY.md 5.1): every pair family, its figure and its
per-layer summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ...properties import PropertyResult
from ...properties import parallelism as par
from ...properties.parallelism import SPEC
from ...report import ID_C, RAW_C, pyplot, save_figure
from ..step import (
    AuditStep,
    LayerInputs,
    LayerSummary,
    StepInputs,
    mean_finite,
    num,
    register_step,
    single,
)


def _family_pairs(lm: Any, fam: Any) -> tuple[list[tuple[int, int]], list[dict]]:
    ids = single(lm, sorted({w for p in fam.pairs for w in p}))
    pairs = [(ids[a], ids[b]) for a, b in fam.pairs if a in ids and b in ids]
    dropped = [
        {"item": [a, b], "reason": "not single tokens"}
        for a, b in fam.pairs
        if a not in ids or b not in ids
    ]
    return pairs, dropped


def run(inp: StepInputs) -> list[PropertyResult]:
    out = []
    geo = inp.geo
    for fam in inp.inputs.families:
        pairs, dropped = _family_pairs(inp.lm, fam)
        if len(pairs) < 2:
            continue
        # structure=geo.st of geo.P: one factorisation of the vocabulary for all families
        r = par(geo.P, pairs, structure=geo.st, seed=inp.seed, name=fam.name, baseline_draws=10)
        out.append(
            dataclasses.replace(
                r,
                excluded=(*dropped, *r.excluded),
                details={**r.details, "n_pairs": len(pairs)},
            )
        )
    return out


def figure(res: Any, path: Path) -> Path | None:
    ps = res.of_kind(SPEC.name)
    if not ps:
        return None
    names = [p.name for p in ps]
    y = np.arange(len(ps))
    fig, ax = pyplot().subplots(figsize=(8, 0.38 * len(ps) + 1.6))
    idv = [num(p.identified.get("logodds_corr")) for p in ps]
    raw = [num(p.raw.get("euclid_cos")) for p in ps]
    bid = [num(p.baseline.get("logodds_corr")) for p in ps]
    braw = [num(p.baseline.get("euclid_cos")) for p in ps]
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


def layer_row(inp: LayerInputs) -> dict[str, Any]:
    """Identified and raw parallelism of the families at one layer (means), and how many
    verdicts are all-or-none."""
    rs = []
    for fam in inp.inputs.families:
        pairs, _ = _family_pairs(inp.lm, fam)
        if len(pairs) >= 2:
            rs.append(
                par(
                    inp.geo.P,
                    pairs,
                    structure=inp.geo.st,
                    seed=inp.seed,
                    name=fam.name,
                    baseline_draws=1,
                )
            )
    return {
        "logodds_corr": mean_finite(r.identified.get("logodds_corr") for r in rs),
        "euclid_cos": mean_finite(r.raw.get("euclid_cos") for r in rs),
        "all_or_none": int(sum(bool(r.all_or_none) for r in rs)),
        "families": len(rs),
    }


STEP = register_step(
    AuditStep(
        name="parallelism",
        property=SPEC.name,
        run=run,
        order=10,
        in_compare=True,
        figure=figure,
        layer=LayerSummary(
            columns=(
                ("logodds_corr", "identified parallelism, mean over families", True),
                (
                    "euclid_cos",
                    "raw parallelism (Euclidean, on G: the same at every layer)",
                    False,
                ),
                ("all_or_none", "families whose parallelism verdict is all-or-none", True),
                ("families", "families measured", None),
            ),
            run=layer_row,
            order=10,
        ),
    )
)
