"""A complete user-defined property in one file: the log-odds gap of token pairs.

Run it in the audit with

    allornone audit --quick --plugin examples/my_property.py

and check it the way the built-in properties are checked:

    from allornone.testing import check_property
    check_property(logodds_gap, pairs, model)

The property. For token pairs ``(a, b)`` (the audit uses its built-in word-pair families,
e.g. man -> woman):

- identified: ``mean_gap``, the mean over contexts x and pairs of
  ``log p(b | x) - log p(a | x) = f(x) . (g(b) - g(a))``, a difference of log-probabilities,
  hence equal in every model with the same next-token distribution; ``mean_abs_gap``, the
  same in absolute value;
- raw: ``diff_norm``, the mean Euclidean length ``||g(b) - g(a)||`` of the unembedding
  differences, which an equivalent model (``g -> A^-T g`` for any invertible ``A``) changes
  at will: it is never all-or-none (``condition_size`` 1).

The witness is the mean difference ``mean_i g(b_i) - g(a_i)``, carried into an equivalent
model by its map of unembeddings (``eq.map_g``). Only the public API is used:
:mod:`allornone.registry` (the spec), :class:`allornone.properties.PropertyResult` and
:mod:`allornone.audit.step` (the audit step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from allornone import AllOrNoneError, NextTokenPredictor, as_predictor
from allornone.audit.step import (
    AuditStep,
    LayerInputs,
    LayerSummary,
    StepInputs,
    register_step,
    single,
)
from allornone.properties import PropertyResult
from allornone.registry import PropertySpec, Statistic, register_property

NAME = "logodds_gap"


@dataclass(frozen=True, eq=False)
class GapDirection:
    """The witness: the mean unembedding difference of the pairs (d,)."""

    vector: np.ndarray = field(repr=False)

    def transport(self, eq: Any, **options: Any) -> np.ndarray:
        if options:
            raise AllOrNoneError(f"{NAME}: transport takes no options, got {sorted(options)}")
        return eq.map_g(self.vector)

    def carry_spec(
        self, eq: Any, spec: Any, options: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        return spec, dict(options)  # token pairs are shared by equivalent models


def _pairs(model: NextTokenPredictor, spec: Sequence[Sequence[Any]]) -> np.ndarray:
    rows = []
    for p in spec:
        if isinstance(p, str) or len(p) != 2:
            raise AllOrNoneError(f"{NAME}: each pair must be (a, b), got {p!r}")
        a, b = (int(model.col_indices([t])[0]) for t in p)
        if a != b:
            rows.append((a, b))
    if not rows:
        raise AllOrNoneError(f"{NAME}: no pair of two different tokens")
    return np.array(rows, dtype=int)


def logodds_gap(
    model: Any,
    spec: Sequence[Sequence[Any]],
    *,
    structure: Any = None,
    pivot: str = "center",
    tol: float | None = None,
    seed: int = 0,
    name: str = "pairs",
) -> PropertyResult:
    """The log-odds gap of token pairs (module docstring); the common property signature."""
    model = as_predictor(model)
    idx = _pairs(model, spec)
    D = np.asarray(model.G[idx[:, 1]], dtype=np.float64) - model.G[idx[:, 0]]
    gaps = np.asarray(model.F, dtype=np.float64) @ D.T  # (n, pairs): log p(b|x) - log p(a|x)
    identified = {"mean_gap": float(gaps.mean()), "mean_abs_gap": float(np.abs(gaps).mean())}
    raw = {"diff_norm": float(np.linalg.norm(D, axis=1).mean())}
    return PropertyResult.from_condition(
        NAME,
        name,
        raw,
        identified,
        "none: Euclidean lengths of g are not preserved by the maps of the equivalence class",
        1.0,
        float(tol) if tol is not None else float(np.sqrt(model.eps)),
        details={"pairs": idx.tolist(), "gap_per_pair": gaps.mean(axis=0)},
        witness=GapDirection(vector=D.mean(axis=0)),
    )


SPEC = register_property(
    PropertySpec(
        name=NAME,
        title="Log-odds gap of word pairs (plugin example)",
        note="How much more likely is b than a after the same context? The mean "
        "log p(b|x) - log p(a|x) is a fact of the distribution (identified); the Euclidean "
        "length of g(b) - g(a) is not, and is never all-or-none.",
        statistics=(
            Statistic(
                "mean_gap",
                "mean log p(b|x) - log p(a|x) over contexts and pairs",
                True,
                unit="nats",
            ),
            Statistic(
                "mean_abs_gap",
                "mean |log p(b|x) - log p(a|x)| over contexts and pairs",
                True,
                unit="nats",
            ),
            Statistic("diff_norm", "mean Euclidean length of g(b) - g(a)", False, "raw"),
        ),
        headline="mean_gap",
        headline_raw="diff_norm",
        function=logodds_gap,
        witness=GapDirection,
        protected_raw=(),
    )
)


# ---------------------------------------------------------------------------- audit step
def _family_pairs(lm: Any, fam: Any) -> list[tuple[int, int]]:
    ids = single(lm, sorted({w for p in fam.pairs for w in p}))
    return [(ids[a], ids[b]) for a, b in fam.pairs if a in ids and b in ids and a != b]


def run(inp: StepInputs) -> list[PropertyResult]:
    """The log-odds gap of every built-in word-pair family on the main contexts."""
    out = []
    for fam in inp.inputs.families:
        pairs = _family_pairs(inp.lm, fam)
        if pairs:
            out.append(logodds_gap(inp.geo.P, pairs, name=fam.name))
    return out


def figure(res: Any, path: Path) -> Path | None:
    from allornone.report import ID_C, pyplot, save_figure

    ps = res.of_kind(NAME)
    if not ps:
        return None
    fig, ax = pyplot().subplots(figsize=(7, 0.35 * len(ps) + 1.5))
    ax.barh(np.arange(len(ps)), [p.identified["mean_gap"] for p in ps], color=ID_C)
    ax.set_yticks(np.arange(len(ps)), [p.name for p in ps], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("mean log p(b|x) - log p(a|x) (identified)")
    ax.set_title("Log-odds gap per family")
    return save_figure(fig, path)


def layer_row(inp: LayerInputs) -> dict[str, Any]:
    gaps = [
        logodds_gap(inp.geo.P, pairs).identified["mean_gap"]
        for fam in inp.inputs.families
        if (pairs := _family_pairs(inp.lm, fam))
    ]
    return {"gap_mean": float(np.mean(gaps)) if gaps else None}


STEP = register_step(
    AuditStep(
        name="logodds gap",
        property=NAME,
        run=run,
        order=60,
        in_compare=True,
        figure=figure,
        layer=LayerSummary(
            columns=(("gap_mean", "mean log-odds gap over the families (identified)", True),),
            run=layer_row,
            order=60,
        ),
    )
)
