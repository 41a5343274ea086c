"""The audit's calls into :mod:`allornone.properties`, one small function per property.

Each function turns the audit's inputs (families of words, relations, labelled texts) into
token indices / context rows and calls the property module. Where a property module is not
available yet, a minimal implementation of THEORY.md 5.3 / 5.4 stands in (marked
``details["implementation"] = "audit fallback"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..linalg import r_factor
from ..predictor import NextTokenPredictor
from ..properties._result import PropertyResult
from ..structure import Structure, structure


@dataclass(eq=False)
class Geometry:
    """Factorisations shared by the property steps (on the main context set)."""

    P: NextTokenPredictor  # main contexts x all tokens
    st: Structure
    R_G: np.ndarray  # G0 = Q_G R_G (centred unembeddings)
    R_Fc: np.ndarray  # F - mean f = Q R_Fc: <u, v>_{Sigma_f} ~ (R_Fc u).(R_Fc v)

    @classmethod
    def build(cls, P: NextTokenPredictor, st: Structure) -> Geometry:
        R_G = r_factor(P.G, shift=P.g_mean)
        R_Fc = r_factor(P.F, shift=P.F.mean(axis=0))
        return cls(P=P, st=st, R_G=R_G, R_Fc=R_Fc)


def _single(lm: Any, words: list[str]) -> dict[str, int]:
    return dict(lm.word_tokens(list(words)).single)


def answer_ids(lm: Any, relation: Any) -> dict[str, int]:
    """``object -> token id`` for a relation's single-token objects."""
    return _single(lm, sorted({o for _, o in relation.samples}))


# ---------------------------------------------------------------------------- parallelism
def parallelism(lm: Any, geo: Geometry, families: list[Any], seed: int) -> list[PropertyResult]:
    from ..properties.parallelism import _g_side
    from ..properties.parallelism import parallelism as par

    side = _g_side(geo.P, geo.st)  # shared factorisations (one QR of the vocabulary)
    out = []
    for fam in families:
        ids = _single(lm, sorted({w for p in fam.pairs for w in p}))
        pairs = [(ids[a], ids[b]) for a, b in fam.pairs if a in ids and b in ids]
        dropped = [
            {"item": [a, b], "reason": "not single tokens"}
            for a, b in fam.pairs
            if a not in ids or b not in ids
        ]
        if len(pairs) < 2:
            continue
        r = par(
            geo.P,
            pairs,
            name=fam.name,
            seed=seed,
            structure_=geo.st,
            baseline_draws=10,
            _side=side,
        )
        r.excluded = dropped + list(r.excluded)
        r.details["n_pairs"] = len(pairs)
        out.append(r)
    return out


def analogies(lm: Any, geo: Geometry, questions: dict[str, list[tuple]]) -> dict[str, Any]:
    """3CosAdd per section, raw (Euclidean g) and identified (Cov(f) cosines of centred g0)."""
    from ..properties.parallelism import analogy_accuracy

    if not questions:
        return {"sections": []}
    words = sorted({w for qs in questions.values() for q in qs for w in q})
    ids = _single(lm, words)
    qidx = {
        sec: [tuple(ids[w] for w in q) for q in qs if all(w in ids for w in q)]
        for sec, qs in questions.items()
    }
    qidx = {s: q for s, q in qidx.items() if q}
    if not qidx:
        return {"sections": []}
    raw = analogy_accuracy(geo.P.G, qidx)
    ident = analogy_accuracy(geo.P.G0() @ geo.R_Fc.T, qidx)
    rows = [
        {
            "section": s,
            "n_questions": raw.counts[s],
            "n_total": len(questions[s]),
            "acc_raw": raw.accuracy[s],
            "acc_identified": ident.accuracy[s],
        }
        for s in qidx
    ]
    return {
        "sections": rows,
        "overall": {
            "acc_raw": raw.accuracy["overall"],
            "acc_identified": ident.accuracy["overall"],
        },
    }


# ---------------------------------------------------------------------------- relations
def relations(
    lm: Any, P: NextTokenPredictor, ctx: Any, rels: list[Any], st: Structure, seed: int
) -> list[PropertyResult]:
    from ..properties.relational import relational

    out = []
    for r in rels:
        ids = answer_ids(lm, r)
        keep = [i for i, (_, o) in enumerate(r.samples) if o in ids]
        answers = sorted(set(ids.values()))
        if len(keep) < 4 or len(answers) < 2:
            continue
        S = P.subset(rows=[ctx.rows(f"subjects:{r.name}")[i] for i in keep])
        Q = P.subset(rows=[ctx.rows(f"prompts:{r.name}")[i] for i in keep])
        objects = [ids[r.samples[i][1]] for i in keep]
        res = relational(S, Q, answers, objects=objects, name=r.name, seed=seed, kl=False)
        res.excluded = [
            {"item": r.samples[i][1], "reason": "object is not a single token"}
            for i in range(len(r.samples))
            if i not in set(keep)
        ] + list(res.excluded)
        res.details["n_subjects"] = len(keep)
        res.details["n_answers"] = len(answers)
        out.append(res)
    return out


# ---------------------------------------------------------------------------- probing
def _two_class(lt: Any) -> tuple[np.ndarray, list[str]] | None:
    classes = sorted(set(lt.labels))
    if len(classes) < 2:
        return None
    y = np.array([classes.index(c) for c in lt.labels])
    return y, classes


def probing(
    P: NextTokenPredictor, ctx: Any, label_sets: list[Any], geo: Geometry, seed: int
) -> list[PropertyResult]:
    """THEORY.md 5.3 via :func:`allornone.properties.probe` (fallback if it is missing)."""
    try:
        from ..properties.probing import probe
    except ImportError:  # pragma: no cover - the module ships with the package
        probe = None
    out = []
    for lt in label_sets:
        rows = ctx.rows(f"labels:{lt.name}")
        if probe is None:
            out.append(_probe_fallback(P, rows, lt, geo, seed))
            continue
        r = probe(P.subset(rows=rows), list(lt.labels), name=lt.name, seed=seed)
        y = np.asarray(lt.labels)
        test = np.asarray(r.details.get("test", []), dtype=int)
        if test.size:
            r.baseline["majority"] = float(max((y[test] == c).mean() for c in set(y[test])))
        out.append(r)
    return out


def _intersection_MS_Nperp(F_S: np.ndarray, N: np.ndarray, d: int) -> np.ndarray:
    """Orthonormal basis of ``M_S cap N^perp`` (directions a probe may read but no logit does)."""
    U, s, Vt = np.linalg.svd(F_S, full_matrices=False)
    r = int((s > 1e-6 * s[0]).sum()) if s.size and s[0] > 0 else 0
    M_S = Vt[:r].T
    if N.shape[1] >= d or r == 0:
        return np.zeros((d, 0))
    _, c, Wt = np.linalg.svd(N.T @ M_S, full_matrices=True)
    c = np.concatenate([c, np.zeros(r - c.size)]) if c.size < r else c
    null = Wt[c < 1e-6].T
    return M_S @ null


def _probe_fallback(
    P: NextTokenPredictor, rows: list[int], lt: Any, geo: Geometry, seed: int
) -> PropertyResult:
    from ..properties._common import canonical_features, fit_logistic, split

    yc = _two_class(lt)
    assert yc is not None
    y, classes = yc
    F_S = P.F[rows]
    train, test = split(len(rows), 0.3, seed, strata=y)
    nc = len(classes)

    def acc(X: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = fit_logistic(X[train], y[train], nc)
        S = X[test] @ W.T + b
        pred = (S[:, 0] > 0).astype(int) if S.shape[1] == 1 else S.argmax(axis=1)
        return float((pred == y[test]).mean()), W

    acc_raw, W = acc(F_S)
    Z = canonical_features(F_S @ geo.R_G.T)
    acc_id, _ = acc(Z)
    B = _intersection_MS_Nperp(F_S, geo.st.N, P.d)
    size = float(np.linalg.norm(B.T @ W.T) / max(np.linalg.norm(W), 1e-300)) if B.size else 0.0
    majority = float(np.bincount(y[test]).max() / len(test))
    return PropertyResult(
        property="probing",
        name=lt.name,
        raw={"probe_acc_raw": acc_raw, "w_norm": float(np.linalg.norm(W))},
        identified={"probe_acc_identified": acc_id},
        all_or_none=size <= 1e-6,
        condition="w in N + M_S^perp; condition_size = ||P_{M_S cap N^perp} w|| / ||w||",
        condition_size=size,
        tol=1e-6,
        baseline={"majority": majority},
        details={
            "classes": classes,
            "n_train": len(train),
            "n_test": len(test),
            "implementation": "audit fallback",
        },
        witness=W,
    )


# ---------------------------------------------------------------------------- steering
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


def _steer(
    P: NextTokenPredictor, rows: list[int], lt: Any, geo: Geometry, seed: int, lm: Any
) -> PropertyResult:
    from ..properties._common import split
    from ..properties.steering import measured_shift
    from ..properties.steering import steering as steer

    y, classes = _two_class(lt)  # type: ignore[misc]
    train, test = split(len(rows), 0.3, seed, strata=y)
    F_S = P.F[rows]
    v = F_S[train][y[train] == 1].mean(axis=0) - F_S[train][y[train] == 0].mean(axis=0)
    alpha = 1.0
    pred = alpha * (P.G0() @ v)
    target = np.argsort(-pred)[:20]
    r = steer(
        geo.P,
        v,
        alpha=alpha,
        targets=target,
        name=f"{lt.name}: {classes[0]} -> {classes[1]}",
        structure_=geo.st,
    )
    src_rows = [rows[i] for i in test[y[test] == 0][:8]]
    rng = np.random.default_rng(seed)
    off = rng.choice(np.setdiff1d(np.arange(P.V), target), min(300, P.V - 20), replace=False)
    how = "factor model (F + alpha v) G^T"
    hf = getattr(lm, "hf_model", None)
    meas = None
    if hf is not None and P.contexts is not None and src_rows:
        chk = measured_shift(hf, lm.tokenizer, [P.contexts[i] for i in src_rows], v, alpha)
        meas = np.asarray(chk.measured)
        how = f"real model forward, hook: {chk.hooked}"
    if meas is None:
        from scipy.special import log_softmax

        src = P.F[src_rows]
        d = log_softmax((src + alpha * v) @ P.G.T, axis=1) - log_softmax(src @ P.G.T, axis=1)
        meas = d - d.mean(axis=1, keepdims=True)
    r.identified["prediction_error"] = float(np.abs(meas - pred).max())
    r.raw["v_norm"] = float(np.linalg.norm(v))
    r.details.update(
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
    for k in ("shift", "identified_shift", "v", "transferable_part", "off_targets"):
        r.details.pop(k, None)  # V- or d-sized arrays: keep results.json small
    return r


def _steer_fallback(
    P: NextTokenPredictor, rows: list[int], lt: Any, geo: Geometry, seed: int, fn: Any
) -> PropertyResult:
    from scipy.special import log_softmax

    from ..properties._common import split

    y, classes = _two_class(lt)  # type: ignore[misc]
    F_S = P.F[rows]
    train, test = split(len(rows), 0.3, seed, strata=y)
    a, b = classes[0], classes[1]
    v = F_S[train][y[train] == 1].mean(axis=0) - F_S[train][y[train] == 0].mean(axis=0)
    alpha = 1.0
    G0 = P.G0()
    pred = alpha * (G0 @ v)  # predicted centred log-odds shift, same for every context
    src = F_S[test][y[test] == 0][:32]  # held-out contexts of the source class
    lp0 = log_softmax(src @ P.G.T, axis=1)
    lp1 = log_softmax((src + alpha * v) @ P.G.T, axis=1)
    dlp = lp1 - lp0  # measured change of log p(y|x)
    dL = dlp - dlp.mean(axis=1, keepdims=True)  # measured centred log-odds shift
    err = float(np.abs(dL - pred).max())
    n_t = 20
    target = np.argsort(-pred)[:n_t]
    rng = np.random.default_rng(seed)
    off = np.setdiff1d(np.arange(P.V), target)
    off = rng.choice(off, min(2000, off.size), replace=False)
    M, N = geo.st.M, geo.st.N
    vn = N @ (N.T @ v)  # the part of v any logit reads
    size = float(np.linalg.norm(vn - M @ (M.T @ vn)) / np.linalg.norm(v))
    labels_tok = P.tokens
    return PropertyResult(
        property="steering",
        name=f"{lt.name}: {a} -> {b}",
        raw={"v_norm": float(np.linalg.norm(v))},
        identified={
            "target_shift": float(dlp[:, target].mean()),
            "off_target_shift": float(np.abs(dlp[:, off]).mean()),
            "prediction_error": err,
        },
        all_or_none=size <= 1e-6,
        condition="v in M + N^perp; condition_size = ||P_{M^perp} P_N v|| / ||v||",
        condition_size=size,
        tol=1e-6,
        details={
            "alpha": alpha,
            "n_contexts": int(src.shape[0]),
            "target_tokens": target.tolist(),
            "target_labels": [labels_tok[i] for i in target] if labels_tok else [],
            "predicted_target": pred[target].tolist(),
            "measured_target": dlp[:, target].mean(axis=0).tolist(),
            "predicted_off": pred[off[:300]].tolist(),
            "measured_off": dlp[:, off[:300]].mean(axis=0).tolist(),
            "implementation": "audit fallback (difference of class means)",
        },
        witness=v,
    )


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
    G0 = m.G0()
    d1, d2 = G0[1] - G0[0], G0[3 % m.V] - G0[2 % m.V]
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
