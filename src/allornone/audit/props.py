"""The audit's calls into :mod:`allornone.properties`, one small function per property.

Each function turns the audit's inputs (families of words, relations, labelled texts) into
token indices / context rows and calls the property functions through their public API
(``name(model, spec, *, structure=..., seed=...)``). Results are never modified: what the
audit adds (items it dropped before the call, the forward-pass check of a steering shift)
goes into a new result (``dataclasses.replace`` / :meth:`PropertyResult.with_checks`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..predictor import NextTokenPredictor
from ..properties import (
    PropertyResult,
    RelationSpec,
    analogy_accuracy,
    probe,
    relational,
    split,
)
from ..properties import parallelism as par
from ..properties import steering as steer
from ..structure import Structure, structure


@dataclass(frozen=True, eq=False)
class Geometry:
    """The main context set and its structure, shared by the property steps (the property
    functions cache their factorisations per structure)."""

    P: NextTokenPredictor  # main contexts x all tokens
    st: Structure  # structure(P)

    @classmethod
    def build(cls, P: NextTokenPredictor, st: Structure) -> Geometry:
        return cls(P=P, st=st)


def _single(lm: Any, words: list[str]) -> dict[str, int]:
    return dict(lm.word_tokens(list(words)).single)


def answer_ids(lm: Any, relation: Any) -> dict[str, int]:
    """``object -> token id`` for a relation's single-token objects."""
    return _single(lm, sorted({o for _, o in relation.samples}))


# ---------------------------------------------------------------------------- parallelism
def parallelism(lm: Any, geo: Geometry, families: list[Any], seed: int) -> list[PropertyResult]:
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
        # structure=geo.st of geo.P: one factorisation of the vocabulary for all families
        r = par(geo.P, pairs, structure=geo.st, seed=seed, name=fam.name, baseline_draws=10)
        out.append(
            dataclasses.replace(
                r,
                excluded=(*dropped, *r.excluded),
                details={**r.details, "n_pairs": len(pairs)},
            )
        )
    return out


def analogies(lm: Any, geo: Geometry, questions: dict[str, list[tuple]]) -> dict[str, Any]:
    """3CosAdd per section, raw (Euclidean g) and identified (Cov(f) cosines of centred g0).

    Every question whose four words are single tokens is scored (``n_questions`` of
    ``n_total``). For a word2vec model ``acc_raw`` is on the output vectors ``g = syn1neg``
    (the predictor's unembedding); ``acc_input_vectors`` is the same 3CosAdd on the input
    vectors ``wv.vectors``: the figure gensim's ``evaluate_word_analogies`` reports (words
    matched case-insensitively, as there), section by section.
    """
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
    r = analogy_accuracy(geo.P, qidx, structure=geo.st)
    counts = r.details["counts"]
    w2v = getattr(getattr(lm, "wrapped", lm), "w2v", None)
    inp_acc: dict[str, float] = {}
    if w2v is not None:
        vecs = np.asarray(w2v.wv.vectors)
        P_in = NextTokenPredictor(geo.P.F[: min(geo.P.n, 2)], vecs, tokens=geo.P.tokens)
        inp_acc = dict(analogy_accuracy(P_in, qidx).raw)
    rows = [
        {
            "section": s,
            "n_questions": counts[s],
            "n_total": len(questions[s]),
            "acc_raw": r.raw[s],
            "acc_identified": r.identified[s],
            **({"acc_input_vectors": inp_acc[s]} if inp_acc else {}),
        }
        for s in qidx
    ]
    overall: dict[str, Any] = {
        "acc_raw": r.raw["overall"],
        "acc_identified": r.identified["overall"],
    }
    if inp_acc:
        overall["acc_input_vectors"] = inp_acc["overall"]
        overall["note"] = (
            "acc_raw: output vectors (syn1neg); acc_input_vectors: input vectors (wv), as "
            "gensim's evaluate_word_analogies"
        )
    overall["n_questions"] = int(sum(counts[s] for s in qidx))
    overall["n_total"] = int(sum(len(q) for q in questions.values()))
    return {"sections": rows, "overall": overall}


# ---------------------------------------------------------------------------- relations
#: Most subjects per relation whose whole object continuation is scored (one forward pass
#: each, batched): a seeded sample of the measured subjects, multi-token ones first.
CONTINUATION_SUBJECTS = 50


def relations(
    lm: Any,
    P: NextTokenPredictor,
    ctx: Any,
    rels: list[Any],
    st: Structure,
    seed: int,
    kl: bool = False,
    counts: dict[str, dict[str, int]] | None = None,
    multi: dict[str, list[tuple[str, str, int]]] | None = None,
) -> list[PropertyResult]:
    """THEORY.md 5.2 on every relation (its subjects with single-token objects and, given
    ``multi``, those with multi-token objects measured by the object's first token), with
    the relation's metadata (source, description, properties, template) in ``details``.

    The answer set is the first tokens of the objects; distinct objects with the same first
    token are one answer (the next token cannot tell them apart), counted in
    ``n_first_token_collisions``. Beside it, ``details["continuation"]``: the mean
    ``log p(" " + object | prompt)`` of the whole object under the model
    (``continuation_logprob``), on at most :data:`CONTINUATION_SUBJECTS` subjects.
    """
    out = []
    for r in rels:
        ids = answer_ids(lm, r)
        keep = [i for i, (_, o) in enumerate(r.samples) if o in ids]
        extra = list((multi or {}).get(r.name, []))
        s_rows = [ctx.rows(f"subjects:{r.name}")[i] for i in keep]
        q_rows = [ctx.rows(f"prompts:{r.name}")[i] for i in keep]
        objs = [r.samples[i][1] for i in keep]
        obj_ids = [ids[o] for o in objs]
        if extra:
            s_rows += ctx.rows(f"subjects_multi:{r.name}")
            q_rows += ctx.rows(f"prompts_multi:{r.name}")
            objs += [o for _, o, _ in extra]
            obj_ids += [t for _, _, t in extra]
        answers = sorted(set(obj_ids))
        if len(keep) < 4 or len(answers) < 2:
            continue
        spec = RelationSpec(subjects=s_rows, queries=q_rows, answers=answers, objects=obj_ids)
        res = relational(P, spec, seed=seed, name=r.name, kl=kl)
        kept = set(keep)
        in_multi = {o for _, o, _ in extra}
        dropped = [
            {"item": r.samples[i][1], "reason": "object is not a single token"}
            for i in range(len(r.samples))
            if i not in kept and r.samples[i][1] not in in_multi
        ]
        meta = r.metadata() if hasattr(r, "metadata") else {"source": getattr(r, "source", "")}
        c = (counts or {}).get(r.name, {})
        by_first: dict[int, set[str]] = {}
        for o, t in zip(objs, obj_ids):
            by_first.setdefault(t, set()).add(o)
        details = {
            **res.details,
            "n_subjects": len(s_rows),
            "n_answers": len(answers),
            "n_samples": c.get("samples", len(r.samples)),
            "n_single_token_objects": c.get("single_token_objects", len(keep)),
            "n_multi_token_objects": len(extra),
            "n_multi_token_available": c.get("multi_token_objects", len(extra)),
            "n_first_token_collisions": sum(len(v) for v in by_first.values() if len(v) > 1),
            "answer_set": "first token of each object (' ' + object, running text)",
            "template": r.templates[0],
            "prompt_example": ctx.all[q_rows[0]],
            **meta,
        }
        cont = _continuations(lm, ctx, q_rows, objs, len(keep), seed)
        if cont is not None:
            details["continuation"] = cont
            details["continuation_logprob_mean"] = cont["mean_logprob"]
        out.append(dataclasses.replace(res, excluded=(*dropped, *res.excluded), details=details))
    return out


def _continuations(
    lm: Any, ctx: Any, q_rows: list[int], objs: list[str], n_single: int, seed: int
) -> dict[str, Any] | None:
    """Mean log-probability of the whole object after the prompt, on at most
    :data:`CONTINUATION_SUBJECTS` subjects (multi-token objects first, then single-token
    ones; a seeded sample within each); None for a model without ``continuation_logprob``."""
    score = getattr(lm, "continuation_logprob", None)
    if score is None or not callable(score):
        return None
    rng = np.random.default_rng([seed, 13])
    multi_i = rng.permutation(np.arange(n_single, len(objs))).tolist()
    single_i = rng.permutation(n_single).tolist()
    pick = (multi_i + single_i)[:CONTINUATION_SUBJECTS]
    lp = np.asarray(score([ctx.all[q_rows[i]] for i in pick], [" " + objs[i] for i in pick]))
    is_multi = np.array([i >= n_single for i in pick], dtype=bool)
    mean = lambda x: float(x.mean()) if x.size else float("nan")  # noqa: E731
    return {
        "cap": CONTINUATION_SUBJECTS,
        "subjects": pick,
        "logprob": lp.tolist(),
        "n_scored": len(pick),
        "n_scored_multi_token": int(is_multi.sum()),
        "mean_logprob": mean(lp),
        "mean_logprob_multi_token": mean(lp[is_multi]),
        "mean_logprob_single_token": mean(lp[~is_multi]),
        "what": "log p(' ' + object | prompt), summed over the object's tokens",
    }


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
    """THEORY.md 5.3 via :func:`allornone.properties.probe` (its ``baseline`` holds the
    held-out majority-class accuracy)."""
    return [
        probe(
            P.subset(rows=ctx.rows(f"labels:{lt.name}")), list(lt.labels), seed=seed, name=lt.name
        )
        for lt in label_sets
    ]


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
        from ..models.steering_check import measured_shift

        chk = measured_shift(hf, lm.tokenizer, [P.contexts[i] for i in src_rows], v, alpha)
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
    return r.with_checks({"prediction_error": float(np.abs(meas - pred).max())}, details=details)


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
