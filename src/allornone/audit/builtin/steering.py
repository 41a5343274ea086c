"""The audit step of linear steering (THEORY.md 5.4): a difference-of-means vector per
labelled set, its predicted shift checked against a forward pass, its figure and its
per-layer summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...predictor import NextTokenPredictor
from ...properties import PropertyResult, split
from ...properties import steering as steer
from ...properties.steering import SPEC
from ...report import RAW_C, pyplot, save_figure
from ..step import (
    AuditStep,
    Geometry,
    LayerInputs,
    LayerSummary,
    StepInputs,
    mean_finite,
    register_step,
)
from .probing import label_sets


def run(inp: StepInputs) -> list[PropertyResult]:
    return steering(inp.P, inp.ctx, inp.inputs.labels, inp.geo, inp.seed, inp.lm)


def _two_class(lt: Any) -> tuple[np.ndarray, list[str]] | None:
    classes = sorted(set(lt.labels))
    if len(classes) < 2:
        return None
    y = np.array([classes.index(c) for c in lt.labels])
    return y, classes


def steering(
    P: NextTokenPredictor,
    ctx: Any,
    label_sets: list[Any],
    geo: Geometry,
    seed: int,
    lm: Any = None,
) -> list[PropertyResult]:
    """THEORY.md 5.4: difference-of-means vectors between the two classes of each label set,
    predicted shifts from :func:`allornone.properties.steering`, measured on held-out contexts
    (with the real model forward when ``lm`` has one)."""
    out = []
    for lt in label_sets:
        yc = _two_class(lt)
        if yc is None:
            continue
        out.append(_steer(P, ctx.rows(f"labels:{lt.name}"), lt, geo, seed, lm))
    return out


#: V- or d-sized arrays of a steering result that the audit does not save (results.json size)
_STEER_DROP = ("shift", "identified_shift", "v", "transferable_part", "off_targets")


def _steer(
    P: NextTokenPredictor, rows: list[int], lt: Any, geo: Geometry, seed: int, lm: Any
) -> PropertyResult:
    y, classes = _two_class(lt)  # type: ignore[misc]
    train, test = split(len(rows), 0.3, seed, strata=y)
    F_S = P.F[rows]
    v = F_S[train][y[train] == 1].mean(axis=0) - F_S[train][y[train] == 0].mean(axis=0)
    alpha = 1.0
    pred = alpha * P.G0_matmul(v)  # streamed over G: no V x d float64 copy
    target = np.argsort(-pred)[:20]
    r = steer(
        geo.P,
        v,
        structure=geo.st,
        alpha=alpha,
        targets=target,
        name=f"{lt.name}: {classes[0]} -> {classes[1]}",
    )
    src_rows = [rows[i] for i in test[y[test] == 0][:8]]
    rng = np.random.default_rng(seed)
    off = rng.choice(np.setdiff1d(np.arange(P.V), target), min(300, P.V - 20), replace=False)
    how = "factor model (F + alpha v) G^T"
    hf = getattr(lm, "hf_model", None)
    meas = None
    if hf is not None and P.contexts is not None and src_rows:
        from ...models.steering_check import measured_shift

        chk = measured_shift(
            hf,
            lm.tokenizer,
            [P.contexts[i] for i in src_rows],
            v,
            alpha,
            head=getattr(lm, "head", None),
        )
        meas = np.asarray(chk.measured)
        how = f"real model forward, hook: {chk.hooked}"
    if meas is None:
        from scipy.special import log_softmax

        src = P.F[src_rows].astype(np.float64)
        # logits of the shifted and unshifted rows, G streamed (V x m products, not V x d)
        after, before = P.G_matmul((src + alpha * v).T).T, P.G_matmul(src.T).T
        d = log_softmax(after, axis=1) - log_softmax(before, axis=1)
        meas = d - d.mean(axis=1, keepdims=True)
    details = {k: val for k, val in r.details.items() if k not in _STEER_DROP}
    details.update(
        {
            "n_contexts": len(src_rows),
            "measured_with": how,
            "target_labels": [P.tokens[i] for i in target] if P.tokens else [],
            "predicted_target": pred[target].tolist(),
            "measured_target": meas[:, target].mean(axis=0).tolist(),
            "predicted_off": pred[off].tolist(),
            "measured_off": meas[:, off].mean(axis=0).tolist(),
        }
    )
    err = float(np.abs(meas - pred).max())
    effect = float(np.abs(meas).max())
    checks = {
        "prediction_error": err,
        "prediction_error_vs_effect": err / effect if effect > 0 else float("inf"),
    }
    return r.with_checks(checks, details=details)


def figure(res: Any, path: Path) -> Path | None:
    ps = [p for p in res.of_kind(SPEC.name) if "predicted_target" in p.details]
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


def layer_row(inp: LayerInputs) -> dict[str, Any]:
    rs = steering(inp.P, inp.ctx, inp.inputs.labels, inp.geo, inp.seed)
    return {
        "steer_selectivity": mean_finite(r.identified.get("selectivity") for r in rs),
        "steer_all_or_none": int(sum(bool(r.all_or_none) for r in rs)),
    }


STEP = register_step(
    AuditStep(
        name="steering",
        property=SPEC.name,
        run=run,
        order=50,
        figure=figure,
        layer=LayerSummary(
            columns=(
                (
                    "steer_selectivity",
                    "identified selectivity of the difference-of-means steering shifts, mean",
                    True,
                ),
                ("steer_all_or_none", "steering vectors whose verdict is all-or-none", True),
            ),
            run=layer_row,
            order=30,
            sets=label_sets,
        ),
    )
)
