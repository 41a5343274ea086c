"""Structure on restricted token sets, and the equivalence class shown on the model itself:
sampled models of other widths with exactly the same distribution (THEORY.md 4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._io import to_jsonable
from .._validation import AllOrNoneError
from ..equivalence import equivalence
from ..predictor import NextTokenPredictor
from ..sampler import sample_equivalent
from ..structure import reduced, structure
from .inputs import AuditConfig, ContextSets, Inputs, single_ids
from .step import answer_ids


def _restricted_summary(P: NextTokenPredictor) -> dict[str, Any]:
    d = P.d
    summ = to_jsonable(structure(reduced(P)).summary())
    summ["d"] = d  # the reduced basis spans M + N exactly; report the model's own width
    return summ


def restricted_structures(
    P: NextTokenPredictor, ctx: ContextSets, inp: Inputs, lm: Any, cfg: AuditConfig
) -> list[dict[str, Any]]:
    """Structure on restricted token sets (a relation's answers, a family's tokens)."""
    out: list[dict[str, Any]] = []
    rng = np.random.default_rng(cfg.seed)
    main = np.asarray(ctx.rows("main"))
    if main.size > 128:  # families: k <= |tokens| - 1 anyway; 128 contexts are plenty
        main = np.sort(rng.choice(main, 128, replace=False))
    for r in inp.relations:
        ids = answer_ids(lm, r)
        cols = sorted(set(ids.values()))
        if len(cols) < 2:
            continue
        summ = _restricted_summary(P.subset(rows=ctx.rows(f"prompts:{r.name}"), cols=cols))
        out.append({"kind": "relation answers", "name": r.name, **summ})
    for fam in inp.families:
        words = sorted({w for p in fam.pairs for w in p})
        cols = sorted(set(single_ids(lm, words).values()))
        if len(cols) < 2:
            continue
        summ = _restricted_summary(P.subset(rows=main.tolist(), cols=cols))
        out.append({"kind": "family tokens", "name": fam.name, **summ})
    return [o for o in out if o["k"] < o["d"]]


def equivalence_demo(
    P: NextTokenPredictor, ctx: ContextSets, inp: Inputs, lm: Any, cfg: AuditConfig
) -> dict[str, Any]:
    """Sample equivalent models of other widths on a restricted problem (k < d) and show
    which statistics move (raw) and which stay fixed (identified)."""
    if not inp.relations:
        raise AllOrNoneError("the equivalence demonstration needs at least one relation")
    r = inp.relations[0]
    ids = answer_ids(lm, r)
    cols = sorted(set(ids.values()))
    rows = ctx.rows(f"prompts:{r.name}")
    if len(cols) < 4:  # fall back to a concept family's tokens
        fam = max(inp.families, key=len)
        cols = sorted(set(single_ids(lm, sorted({w for p in fam.pairs for w in p})).values()))
        rows = ctx.rows("main")
    base = P.subset(rows=rows, cols=cols)
    st = structure(base)
    d, k = base.d, st.k
    widths = [max(k + 2, d // 2), d + 64, 2 * d][: max(cfg.n_equivalents, 1)]
    models: list[tuple[str, int, str, NextTokenPredictor]] = [("original", d, "-", base)]
    for i, w in enumerate(widths):
        s = sample_equivalent(base, dim=w, seed=cfg.seed + 1 + i, junk="random", structure=st)
        models.append((f"sample {i + 1}", w, "random", s.model))
    s = sample_equivalent(
        base, dim=d, seed=cfg.seed + 99, junk="adversarial", scale=1.0, structure=st
    )
    models.append(("adversarial", d, "adversarial", s.model))
    rows_out = []
    for label, width, junk, m in models:
        eq = equivalence(base, m, rank_tol=st.tol) if label != "original" else None
        rows_out.append(
            {
                "label": label,
                "width": width,
                "junk": junk,
                "equivalent": True if eq is None else bool(eq.equivalent),
                "max_logodds_gap": 0.0 if eq is None else eq.max_logodds_gap,
                "mean_kl": 0.0 if eq is None else eq.mean_kl,
                "residual_f": 0.0 if eq is None else eq.residual_f,
                "residual_g": 0.0 if eq is None else eq.residual_g,
                "stats": demo_stats(m, tol=st.tol),
            }
        )
    return {
        "problem": {
            "relation": r.name,
            "n": base.n,
            "V": base.V,
            "d": d,
            "k": k,
            "dim_J_f": st.dim_J_f,
            "dim_J_g": st.dim_J_g,
            "rank_tol": st.tol,
        },
        "models": rows_out,
        "stat_identified": DEMO_STATS,
    }


# ---------------------------------------------------------------------------- demo stats
#: Statistic -> identified? (for the equivalence-class table)
DEMO_STATS: dict[str, bool] = {
    "euclid_cos": False,
    "mean_norm_f": False,
    "cos_f01": False,
    "dim_M": False,
    "k": True,
    "logodds_corr": True,
    "log_odds_x0": True,
}


def demo_stats(m: NextTokenPredictor, tol: float | None = None) -> dict[str, float]:
    """Raw and identified statistics of one model on the demo problem (fixed token roles)."""
    G0 = m.G0(rows=[0, 1, 2 % m.V, 3 % m.V])  # the four tokens only, not V x d
    d1, d2 = G0[1] - G0[0], G0[3] - G0[2]
    Fc = m.F - m.F.mean(axis=0)
    l1, l2 = Fc @ d1, Fc @ d2
    st = structure(m, tol=tol)  # the original's relative rank tolerance, for every model
    f0, f1 = m.F[0], m.F[1 % m.n]
    return {
        "euclid_cos": _cos(d1, d2),
        "mean_norm_f": float(np.linalg.norm(m.F, axis=1).mean()),
        "cos_f01": _cos(f0, f1),
        "dim_M": float(st.dim_M),
        "k": float(st.k),
        "logodds_corr": _cos(l1, l2),
        "log_odds_x0": float(m.F[0] @ d1),
    }


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")
