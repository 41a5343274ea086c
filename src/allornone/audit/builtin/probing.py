"""The audit step of linear probing (THEORY.md 5.3): a probe on every labelled set, its
figure and its per-layer summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...predictor import NextTokenPredictor
from ...properties import PropertyResult, probe
from ...properties.probing import SPEC
from ...report import ID_C, RAW_C, pyplot, save_figure
from ..step import AuditStep, LayerInputs, LayerSummary, StepInputs, mean_finite, num, register_step


def run(inp: StepInputs) -> list[PropertyResult]:
    return probing(inp.P, inp.ctx, inp.inputs.labels, inp.seed)


def probing(
    P: NextTokenPredictor, ctx: Any, label_sets: list[Any], seed: int
) -> list[PropertyResult]:
    """THEORY.md 5.3 via :func:`allornone.properties.probe` (its ``baseline`` holds the
    held-out majority-class accuracy)."""
    return [
        probe(
            P.subset(rows=ctx.rows(f"labels:{lt.name}")), list(lt.labels), seed=seed, name=lt.name
        )
        for lt in label_sets
    ]


def figure(res: Any, path: Path) -> Path | None:
    ps = res.of_kind(SPEC.name)
    if not ps:
        return None
    x = np.arange(len(ps))
    fig, ax = pyplot().subplots(figsize=(max(5, 1.8 * len(ps) + 2), 3.6))
    raw = [num(p.raw.get("test_accuracy", p.raw.get("probe_acc_raw"))) for p in ps]
    idv = [
        num(p.identified.get("logodds_test_accuracy", p.identified.get("probe_acc_identified")))
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


def layer_row(inp: LayerInputs) -> dict[str, Any]:
    rs = probing(inp.P, inp.ctx, inp.inputs.labels, inp.seed)
    return {
        "probe_test_accuracy": mean_finite(r.raw.get("test_accuracy") for r in rs),
        "probe_logodds_test_accuracy": mean_finite(
            r.identified.get("logodds_test_accuracy") for r in rs
        ),
        "probe_all_or_none": int(sum(bool(r.all_or_none) for r in rs)),
    }


def label_sets(inputs: Any, quick: bool) -> list[str]:
    """The labelled context sets (read at every layer)."""
    return [f"labels:{lt.name}" for lt in inputs.labels]


STEP = register_step(
    AuditStep(
        name="probing",
        property=SPEC.name,
        run=run,
        order=40,
        in_compare=True,
        figure=figure,
        layer=LayerSummary(
            columns=(
                ("probe_test_accuracy", "held-out accuracy of the probes on f_l, mean", False),
                (
                    "probe_logodds_test_accuracy",
                    "held-out accuracy of the log-odds probes (identified form), mean",
                    True,
                ),
                ("probe_all_or_none", "probes whose verdict is all-or-none", True),
            ),
            run=layer_row,
            order=20,
            sets=label_sets,
        ),
    )
)
