"""The audit step of cyclic and ordered concepts (THEORY.md 11): months, weekdays, numbers and
years (or the user's ``--orders`` files) on the token side and on their contexts, the figure of
the items in the raw and the identified plane, and the per-layer summary."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..._validation import AllOrNoneError
from ...data.orders import OrderSet, builtin_orders, read_orders
from ...properties import PropertyResult
from ...properties.ordered import SPEC, cyclic
from ...report import ID_C, RAW_C, pyplot, save_figure
from ..inputs import word_model
from ..step import AuditStep, LayerInputs, LayerSummary, StepInputs, StepOption, register_step

NAME = "orders"


def load(options: Mapping[str, Any], cfg: Any) -> list[OrderSet]:
    """The user's ``--orders`` files (read and validated before the model loads), else the
    built-in sets."""
    paths = options.get("orders")
    if paths:
        return read_orders(paths)
    return builtin_orders(quick=bool(getattr(cfg, "quick", False)))


def _tokens(lm: Any, order: OrderSet) -> tuple[list[int], list[str]]:
    """Token ids of the single-token items (in order) and the items dropped."""
    single = dict(lm.word_tokens(list(order.items)).single)
    return [single[w] for w in order.items if w in single], [
        w for w in order.items if w not in single
    ]


def contexts(data: list[OrderSet] | None, lm: Any) -> dict[str, list[str]]:
    """The f-side contexts of each set (its first template); a user's set with fewer than 4
    single-token items is refused here, right after the model loads, naming the file."""
    for o in data or []:
        if o.source != "built-in":
            ids, dropped = _tokens(lm, o)
            if len(ids) < 4:
                lines = dict(zip(o.items, o.lines))
                first = ", ".join(f"line {lines[w]} {w!r}" for w in dropped[:3])
                raise AllOrNoneError(
                    f"order file {o.source}: only {len(ids)} of {len(o.items)} items are single "
                    f"tokens of this model ({first} are not); an order needs at least 4: use "
                    "single words or numbers"
                )
    if word_model(lm) is not None:  # word2vec: a context is one word, no templates
        return {}
    return {o.name: o.contexts() for o in data or [] if o.templates}


def run(inp: StepInputs) -> list[PropertyResult]:
    out = []
    for o in inp.data or []:
        ids, dropped = _tokens(inp.lm, o)
        excluded = [{"item": w, "reason": "not a single token"} for w in dropped]
        if len(ids) >= 4:
            r = cyclic(
                inp.geo.P, ids, kind=o.kind, side="g", structure=inp.geo.st, seed=inp.seed,
                name=f"{o.name} (tokens)",
            )  # fmt: skip
            out.append(dataclasses.replace(r, excluded=(*excluded, *r.excluded)))
        if o.templates and f"{NAME}:{o.name}" in inp.ctx.sets:
            rows = inp.ctx.rows(f"{NAME}:{o.name}")
            P = inp.P.subset(rows=rows)
            r = cyclic(P, list(range(len(rows))), kind=o.kind, side="f", seed=inp.seed,
                       name=f"{o.name} (contexts)")  # fmt: skip
            details = {**r.details, "template": o.templates[0], "labels": list(o.items)}
            out.append(dataclasses.replace(r, details=details))
    return out


def figure(res: Any, path: Path) -> Path | None:
    """Each set in the raw plane (Euclidean PCA of f or g) beside the identified plane (PCA of
    the items' log-odds), the items joined in their order (closed for a cycle)."""
    ps = [p for p in res.of_kind(SPEC.name) if "plane_identified" in p.details]
    if not ps:
        return None
    fig, axes = pyplot().subplots(len(ps), 2, figsize=(9, 3.6 * len(ps)), squeeze=False)
    for row, p in zip(axes, ps):
        labels = p.details.get("labels") or [str(i) for i in p.details["items"]]
        closed = p.details.get("kind") == "cycle"
        for ax, key, colour, what in (
            (row[0], "plane_raw", RAW_C, "raw (NOT identified)"),
            (row[1], "plane_identified", ID_C, "identified (log-odds)"),
        ):
            Y = np.asarray(p.details[key], dtype=float)
            Y = np.hstack([Y, np.zeros((len(Y), 2 - Y.shape[1]))]) if Y.shape[1] < 2 else Y
            Z = np.vstack([Y, Y[:1]]) if closed else Y
            ax.plot(Z[:, 0], Z[:, 1], "-", color=colour, lw=1)
            ax.scatter(Y[:, 0], Y[:, 1], s=14, color=colour, zorder=3)
            step = max(1, len(Y) // 24)
            for i in range(0, len(Y), step):
                ax.annotate(_short(labels[i]), Y[i], fontsize=7, xytext=(2, 2),
                            textcoords="offset points")  # fmt: skip
            key_stat = "cca_polygon" if closed else "rank_corr"
            stat = (p.raw if key == "plane_raw" else p.identified).get(key_stat)
            ax.set_title(f"{p.name}: {what}\n{key_stat} = {_fmt(stat)}", fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
            ax.tick_params(labelsize=7)
    fig.suptitle(
        "Ordered items in the top-2 principal plane: raw against identified", fontsize=10, y=1.0
    )
    return save_figure(fig, path)


def _short(label: Any) -> str:
    s = str(label).strip()
    return s if len(s) <= 14 else "..." + s[-12:]


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{float(x):.3g}"


def layer_row(inp: LayerInputs) -> dict[str, Any]:
    """Identified canonical correlation of the cycles with a regular polygon at this layer,
    on the token side (the layer's contexts give the metric) and on the contexts."""
    g, f = [], []
    for o in inp.data.get(NAME) or []:
        if o.kind != "cycle":
            continue
        ids, _ = _tokens(inp.lm, o)
        if len(ids) >= 4:
            g.append(cyclic(inp.geo.P, ids, side="g", structure=inp.geo.st, baseline_draws=0))
        if o.templates and f"{NAME}:{o.name}" in inp.ctx.sets:
            rows = inp.ctx.rows(f"{NAME}:{o.name}")
            P = inp.P.subset(rows=rows)
            f.append(cyclic(P, list(range(len(rows))), side="f", baseline_draws=0))
    mean = lambda rs: float(np.mean([r.identified["cca_polygon"] for r in rs])) if rs else None  # noqa: E731
    return {"cycle_cca_tokens": mean(g), "cycle_cca_contexts": mean(f)}


STEP = register_step(
    AuditStep(
        name=NAME,
        property=SPEC.name,
        run=run,
        order=55,
        figure=figure,
        figure_name="orders",
        options=(
            StepOption(
                "--orders",
                "orders",
                "order files (repeatable): a first line '# cycle' or '# line', optional "
                "'# template: ... {} ...' lines, then one item per line (docs/DATA.md); "
                "default: months, weekdays, numbers, years",
                repeatable=True,
            ),
        ),
        load=load,
        contexts=contexts,
        layer=LayerSummary(
            columns=(
                (
                    "cycle_cca_tokens",
                    "identified canonical correlation of months/weekdays (tokens) with a "
                    "regular polygon, mean over the cycles",
                    True,
                ),
                (
                    "cycle_cca_contexts",
                    "the same on their contexts read at this layer",
                    True,
                ),
            ),
            run=layer_row,
            order=50,
        ),
    )
)
