"""The audit step of relational linearity (THEORY.md 5.2): every relation, the whole
object's log-probability beside it, its report columns, figure and per-layer summary."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ...predictor import NextTokenPredictor
from ...properties import PropertyResult, RelationSpec, relational
from ...properties.relational import SPEC
from ...report import ID_C, RAW_C, fmt, pyplot, save_figure
from ..step import (
    AuditStep,
    Column,
    LayerInputs,
    LayerSummary,
    StepInputs,
    answer_ids,
    mean_finite,
    num,
    register_step,
)

#: Most subjects per relation whose whole object continuation is scored (one forward pass
#: each, batched): a seeded sample of the measured subjects, multi-token ones first.
CONTINUATION_SUBJECTS = 50
#: Relations measured per layer (the usable ones with the most subjects).
LAYER_RELATIONS = 6


def run(inp: StepInputs) -> list[PropertyResult]:
    """THEORY.md 5.2 on every relation of the run (compare: identified forms, no KL probe)."""
    if inp.purpose == "compare":
        return relations(inp.lm, inp.P, inp.ctx, list(inp.relations), inp.seed)
    return relations(
        inp.lm,
        inp.P,
        inp.ctx,
        list(inp.relations),
        inp.seed,
        kl=inp.kl,
        counts=inp.inputs.subject_counts,
        multi=inp.inputs.multi_samples,
    )


def relations(
    lm: Any,
    P: NextTokenPredictor,
    ctx: Any,
    rels: list[Any],
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


# ---------------------------------------------------------------------------- report
def columns(ps: Sequence[Any]) -> list[Column]:
    """Subjects used, held-out count and the faithfulness interval (or 'too few'); the same
    on the model-correct subjects (LRE's filter); multi-token objects and the whole object's
    log-probability."""
    ci_txt, mc_txt = [], []
    for p in ps:
        d = p.details
        ci = (d.get("ci") or {}).get("dist_faithfulness")
        few = (d.get("n_test") or 0) < (d.get("min_held_out") or 0)
        if d.get("decided") is False and few:
            txt = f"too few subjects to decide ({d.get('n_test')} held out)"
        elif ci and None not in ci:
            txt = f"[{fmt(ci[0])}, {fmt(ci[1])}]"
            if d.get("beats_majority") is False:
                txt += f": not above the majority answer ({fmt(p.baseline.get('majority_answer'))})"
        else:
            txt = "-"
        ci_txt.append(txt)
        mc_txt.append(_model_correct_cell(d))
    det = [p.details for p in ps]
    return [
        Column(
            "subjects",
            "subjects measured (train + held out): single-token objects, and multi-token "
            "objects by their first token",
            None,
            tuple(d.get("n_subjects") for d in det),
        ),
        Column(
            "held out",
            "held-out subjects the faithfulness is measured on",
            None,
            tuple(d.get("n_test") for d in det),
        ),
        Column(
            "dist_faithfulness 95% CI",
            "percentile bootstrap over held-out subjects; fewer than 10 held out: too few to "
            "decide; an interval not above the majority answer's faithfulness: not decided",
            True,
            tuple(ci_txt),
        ),
        Column(
            "faithfulness (model-correct subjects)",
            "dist_faithfulness [95% CI] on the held-out subjects whose true object is the "
            "model's own top answer among the relation's answers (LRE's filter; same fitted "
            "map), with their count; fewer than 10 held out: too few to decide",
            True,
            tuple(mc_txt),
        ),
        Column(
            "multi-token objects",
            "subjects whose object is several tokens, measured by its first token",
            None,
            tuple(d.get("n_multi_token_objects") for d in det),
        ),
        Column(
            "mean log p(object)",
            "mean log-probability of the whole object (all its tokens) after the prompt, "
            "under the model, on at most 50 subjects (multi-token objects first)",
            True,
            tuple((d.get("continuation") or {}).get("mean_logprob") for d in det),
        ),
    ]


def _model_correct_cell(d: dict[str, Any]) -> str:
    mc = d.get("model_correct")
    if not isinstance(mc, dict):
        return "-"
    counts = f"{mc.get('n_test')} held out of {mc.get('n_subjects')} model-correct"
    if not mc.get("decided"):
        return f"too few subjects to decide ({counts})"
    ci = (mc.get("ci") or {}).get("dist_faithfulness")
    interval = f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci and None not in ci else ""
    return f"{fmt(mc.get('dist_faithfulness'))}{interval} ({counts})"


def figure(res: Any, path: Path) -> Path | None:
    ps = res.of_kind(SPEC.name)
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
        vals = [num((p.identified | p.raw).get(k)) for p in ps]
        ax.bar(x + (j - 0.5) * w, vals, w, color=c, label=lab)
    for i, p in enumerate(ps):
        ax.text(i, 1.02, f"cond. {num(p.condition_size):.1e}", ha="center", fontsize=7)
    ax.set_xticks(x, [p.name for p in ps], fontsize=8, rotation=15)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("held-out faithfulness")
    ax.set_title("Relation maps: do they pick the model's own answer?")
    ax.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- layers
def layer_relations(inputs: Any, quick: bool) -> list[Any]:
    """The relations measured per layer: the usable ones with the most subjects."""
    rels = sorted(inputs.relations, key=lambda r: -len(r.samples))
    return rels[: 2 if quick else LAYER_RELATIONS]


def _layer_sets(rels: Sequence[Any]) -> list[str]:
    return [f"{kind}:{r.name}" for r in rels for kind in ("subjects", "prompts")]


def relation_specs(lm: Any, ctx: Any, rels: Sequence[Any]) -> list[tuple[str, RelationSpec]]:
    """``(name, spec)`` of each relation on the local rows (subjects with single-token
    objects, at least 4 of them and 2 distinct answers)."""
    out = []
    for r in rels:
        ids = answer_ids(lm, r)
        keep = [i for i, (_, o) in enumerate(r.samples) if o in ids]
        objs = [ids[r.samples[i][1]] for i in keep]
        if len(keep) < 4 or len(set(objs)) < 2:
            continue
        spec = RelationSpec(
            subjects=[ctx.rows(f"subjects:{r.name}")[i] for i in keep],
            queries=[ctx.rows(f"prompts:{r.name}")[i] for i in keep],
            answers=sorted(set(objs)),
            objects=objs,
        )
        out.append((r.name, spec))
    return out


def subjects_at(P_l: NextTokenPredictor, P_L: NextTokenPredictor, spec: RelationSpec):
    """A predictor whose first rows are the subjects read at layer ``l`` and whose next rows
    are the prompts read at the final layer, with the model's unembeddings (not copied)."""
    F = np.vstack([P_l.F[list(spec.subjects)], P_L.F[list(spec.queries)]])
    return NextTokenPredictor(F, P_L.G, eps=max(P_l.eps, P_L.eps))


def local_spec(spec: RelationSpec) -> RelationSpec:
    n = len(spec.subjects)
    return RelationSpec(
        subjects=list(range(n)),
        queries=list(range(n, 2 * n)),
        answers=spec.answers,
        objects=spec.objects,
    )


def _fit(inp: LayerInputs, name: str, spec: RelationSpec) -> tuple[Any, Any, bool]:
    r = relational(
        subjects_at(inp.P, inp.P_final, spec),
        local_spec(spec),
        seed=inp.seed,
        name=name,
        kl=inp.kl,
    )
    # only the figures the table needs: a result holds d x d maps, and keeping all layers'
    # results at once cost 2 GB on SmolLM2
    return (r.identified.get("dist_r2_test"), r.raw.get("kl_faithfulness"), bool(r.all_or_none))


def _specs_of(inp: LayerInputs) -> list[tuple[str, RelationSpec]]:
    return relation_specs(inp.lm, inp.ctx, layer_relations(inp.inputs, inp.quick))


def layer_jobs(by_layer: dict[int, LayerInputs]) -> list[Any]:
    """Every (layer, relation) fit, independent: run side by side on the cores."""
    jobs = []
    for inp in by_layer.values():
        jobs += [partial(_fit, inp, n, sp) for n, sp in _specs_of(inp)]
    return jobs


def layer_collect(layers: list[int], done: list[Any]) -> dict[int, dict[str, Any]]:
    n = len(done) // len(layers) if layers else 0
    out = {}
    for i, layer in enumerate(layers):
        rs = done[i * n : (i + 1) * n]
        out[layer] = {
            "rel_dist_r2_test": mean_finite(r[0] for r in rs),
            "rel_kl_faithfulness": mean_finite(r[1] for r in rs),
            "rel_all_or_none": int(sum(r[2] for r in rs)),
            "relations": len(rs),
        }
    return out


STEP = register_step(
    AuditStep(
        name="relations",
        property=SPEC.name,
        run=run,
        order=30,
        in_compare=True,
        figure=figure,
        figure_name="relations",
        columns=columns,
        layer=LayerSummary(
            columns=(
                (
                    "rel_dist_r2_test",
                    "held-out R^2 of the distribution form: subject at layer l -> final "
                    "answer log-odds",
                    True,
                ),
                (
                    "rel_kl_faithfulness",
                    "held-out share where the KL probe from layer l picks the model's answer",
                    False,
                ),
                ("rel_all_or_none", "relations whose verdict is all-or-none", True),
                ("relations", "relations measured", None),
            ),
            order=40,
            jobs=layer_jobs,
            collect=layer_collect,
            sets=lambda inputs, quick: _layer_sets(layer_relations(inputs, quick)),
            describe=lambda inputs, quick: {
                "layer_relations": [r.name for r in layer_relations(inputs, quick)]
            },
        ),
    )
)
