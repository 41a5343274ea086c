"""``allornone audit --layers``: the logit lens, layer by layer (THEORY.md 10.4).

Every chosen layer ``l`` is read through the final norm and the LM head
(:mod:`allornone.models.layers`), giving a next-token predictor ``p_l`` on the audit's main
contexts and the whole vocabulary. Per layer:

- effective complexity ``k`` and the 99 %-energy rank of its log-odds (:func:`allornone.structure`);
- ``KL(p_L || p_l)``, the mean over the contexts (streamed over the vocabulary) of the KL from
  the model's own distribution to the layer's;
- parallelism of the built-in pair families (:func:`allornone.properties.parallelism`): the
  identified ``logodds_corr`` (correlation of the log-ratio columns across the contexts) and the
  raw ``euclid_cos`` (cosine of unembedding differences, the same at every layer, since ``G``
  is), averaged over the families, and how many families the verdict calls all-or-none;
- probes and steering vectors on the labelled sets (:func:`~allornone.properties.probe`,
  :func:`~allornone.properties.steering`, difference-of-means vectors of layer ``l``): the raw
  and identified held-out accuracies, the identified selectivity of the shift, and how many
  of them are all-or-none (their conditions, per layer);
- relational linearity in the distribution form (THEORY.md 5.2; the KL probe of Valer et al.):
  the subject's representation at layer ``l`` mapped to the model's own next-token
  distribution after the prompt (final layer), on the ``LAYER_RELATIONS`` usable
  relations with the most subjects; the identified ``dist_r2_test`` and the KL probe's
  held-out faithfulness, averaged over those relations.

KL and every layer's logits come from one streamed pass over the vocabulary for all layers
together (the final layer's block computed once per block, not once per layer).

Written to the output folder: ``layers.csv`` (one row per layer), ``results.json``
(``kind: "layers"``), ``report.html`` / ``report.md`` and ``figures/layers.png``. The per-layer
predictors are an extension beyond the paper (the theory is about the final layer only).
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._io import atomic_write_text, to_jsonable
from .._parallel import run_parallel
from ..linalg import memoized_r_factors
from ..predictor import NextTokenPredictor
from ..report import Block, Explanation, Table, aligned_text, fmt, pyplot, save_figure, write_pages
from ..structure import structure
from . import builtin  # noqa: F401 - registers the built-in steps
from .inputs import AuditConfig, ContextSets, load_inputs, select_subjects
from .step import (
    AuditStep,
    Geometry,
    LayerInputs,
    add_step_contexts,
    audit_steps,
    load_step_data,
)
from .steps import Steps

__all__ = [
    "LAYER_COLUMNS",
    "layer_columns",
    "kl_many",
    "kl_to",
    "run_layers",
    "summary_table",
    "write_layers",
]

#: The layer-wide columns of ``layers.csv`` (each audit step's per-layer columns follow).
BASE_COLUMNS = ("layer", "k", "energy_rank", "gap", "dim_M", "kl_from_final")


def layer_columns() -> tuple[str, ...]:
    """Columns of ``layers.csv``, in order: the layer-wide ones, then every registered
    step's per-layer summary (:class:`~allornone.audit.step.LayerSummary`)."""
    out = list(BASE_COLUMNS)
    for step in audit_steps(purpose="layers"):
        out += [c[0] for c in step.layer.columns]  # type: ignore[union-attr]
    return tuple(out)


#: Columns of ``layers.csv`` with the built-in properties (plugins add theirs).
LAYER_COLUMNS = layer_columns()


def kl_to(
    p: NextTokenPredictor,
    q: NextTokenPredictor,
    *,
    log_normalizer_p: np.ndarray | None = None,
    block: int = 4096,
) -> float:
    """Mean over the contexts of ``KL(p(.|x) || q(.|x))`` in nats, in one streamed pass over
    the vocabulary (``p`` and ``q`` on the same contexts and tokens):
    ``KL = E_p[l_p - l_q] - Z_p + Z_q`` with logits ``l`` and log-normalisers ``Z`` (``Z_q``
    accumulated online; ``Z_p`` computed first unless given, to reuse across layers)."""
    Zp = p.log_normalizer() if log_normalizer_p is None else log_normalizer_p
    m, s = np.full(q.n, -np.inf), np.zeros(q.n)
    e = np.zeros(p.n)
    for start in range(0, p.V, block):
        lp = p.F @ p.G[start : start + block].T
        lq = q.F @ q.G[start : start + block].T
        e += (np.exp(lp - Zp[:, None]) * (lp - lq)).sum(axis=1)
        new = np.maximum(m, lq.max(axis=1))
        s = s * np.exp(m - new) + np.exp(lq - new[:, None]).sum(axis=1)
        m = new
    return max(float(np.mean(e - Zp + m + np.log(s))), 0.0)


def kl_many(
    p: NextTokenPredictor,
    qs: dict[int, NextTokenPredictor],
    *,
    block: int = 2048,
) -> dict[int, float]:
    """:func:`kl_to` from ``p`` to every predictor of ``qs`` (same contexts and tokens) in one
    streamed pass over the vocabulary: ``p``'s logits of a block are computed once for all
    layers, and only ``n x block`` logits of one predictor are held at a time."""
    Zp = p.log_normalizer()
    state = {k: (np.full(q.n, -np.inf), np.zeros(q.n), np.zeros(p.n)) for k, q in qs.items()}
    for start in range(0, p.V, block):
        lp = p.F @ p.G[start : start + block].T
        wp = np.exp(lp - Zp[:, None])
        for k, q in qs.items():
            m, s, e = state[k]
            lq = lp if q is p else q.F @ q.G[start : start + block].T
            e += (wp * (lp - lq)).sum(axis=1)
            new = np.maximum(m, lq.max(axis=1))
            s[:] = s * np.exp(m - new) + np.exp(lq - new[:, None]).sum(axis=1)
            m[:] = new
    # KL(p || p) is 0, not the rounding residual of two log-normalisers summed in other orders
    return {
        k: 0.0 if qs[k] is p else max(float(np.mean(e - Zp + m + np.log(s))), 0.0)
        for k, (m, s, e) in state.items()
    }


def run_layers(
    cfg: AuditConfig, layers: str | list[int] | None = "all", model: Any = None
) -> dict[str, Any]:
    """The per-layer audit (module docstring); returns a JSON-ready dict.

    ``model``: an already loaded :class:`~allornone.models.LanguageModel` (else ``cfg.model``
    is loaded). ``layers``: ``"all"`` or indices ``0..L`` (0 = embeddings).
    """
    from ..models.layers import layer_predictors, num_layers, parse_layers
    from . import pipeline

    cfg = cfg.sized()
    t0 = time.perf_counter()
    lsteps = audit_steps(purpose="layers")
    names = ["load data", "load model", "logit lens", "structure", "kl"]
    names += [s.name for s in lsteps]
    with memoized_r_factors(), Steps(names, cfg.progress) as steps:
        # user files before the model
        inp, step_data = steps.run("load data", lambda: (load_inputs(cfg), load_step_data(cfg)))
        lm = steps.run(
            "load model", lambda: model if model is not None else pipeline.load_model(cfg)
        )
        L = num_layers(lm)
        want = parse_layers(layers, L)
        select_subjects(lm, inp, cfg)  # the audit's own selection: the same main contexts
        ctx = ContextSets.build(inp, seed=cfg.seed)
        add_step_contexts(ctx, step_data, lm, cfg)
        sets = ["main"]  # and every context set a step with a per-layer summary added
        sets += [n for n in ctx.sets if any(n.startswith(f"{s.name}:") for s in lsteps)]
        for step in lsteps:
            for name in step.layer.sets(inp, cfg.quick) if step.layer.sets else []:  # type: ignore[union-attr]
                if name not in sets:
                    sets.append(name)
        lctx, rows = ctx.only(sets)
        texts = [ctx.all[i] for i in rows]
        every = sorted(set(want) | {L})
        preds = steps.run("logit lens", lambda: layer_predictors(lm, texts, every))
        main = lctx.rows("main")
        mains = {layer: preds[layer].subset(rows=main) for layer in every}
        sts = steps.run("structure", lambda: {layer: structure(mains[layer]) for layer in want})
        kls = steps.run("kl", lambda: kl_many(mains[L], {layer: mains[layer] for layer in want}))
        views = {
            layer: LayerInputs(
                lm=lm,
                layer=layer,
                P=preds[layer],
                P_final=preds[L],
                ctx=lctx,
                inputs=inp,
                geo=Geometry.build(mains[layer], sts[layer]),
                seed=cfg.seed,
                kl=cfg.kl,
                quick=cfg.quick,
                data=step_data,
            )
            for layer in want
        }
        per_step = [steps.run(step.name, partial(_layer_rows, step, views)) for step in lsteps]
    described: dict[str, Any] = {}
    for step in lsteps:
        if step.layer.describe is not None:  # type: ignore[union-attr]
            described |= step.layer.describe(inp, cfg.quick)  # type: ignore[union-attr]
    out_rows = []
    for layer in want:
        st = sts[layer]
        row: dict[str, Any] = {
            "layer": layer,
            "k": st.k,
            "energy_rank": st.energy_rank,
            "gap": st.gap,
            "dim_M": st.dim_M,
            "kl_from_final": kls[layer],
        }
        for part in per_step:
            row.update(part[layer])
        out_rows.append(row)
    res = {
        "schema_version": "1.1",
        "kind": "layers",
        "tool": {"name": "allornone", "version": __version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": asdict(cfg),
        "model": {"name": str(lm.name), "d": int(lm.d), "V": int(lm.V), "layers": L},
        "contexts": len(main),
        "contexts_embedded": len(texts),
        "label_sets": [lt.name for lt in inp.labels],
        **described,
        "layers": out_rows,
        "timings_s": steps.timings,
        "runtime_s": round(time.perf_counter() - t0, 2),
        "note": "logit lens: f_l = norm(h_l) through the final norm and LM head; an "
        "extension beyond the paper, whose theory covers the final layer only. Relations: "
        "the subject read at layer l, the answer distribution the model's own (final layer) "
        "after the prompt",
    }
    return to_jsonable(res)


def _layer_rows(step: AuditStep, views: dict[int, LayerInputs]) -> dict[int, dict[str, Any]]:
    """One step's per-layer columns at every layer (its independent jobs side by side on the
    cores, one BLAS thread each, when it declares them)."""
    lay = step.layer
    assert lay is not None
    if lay.jobs is not None and lay.collect is not None:
        done = run_parallel(lay.jobs(views))
        return lay.collect(list(views), done)
    assert lay.run is not None
    return {layer: lay.run(view) for layer, view in views.items()}


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    cols = layer_columns()
    w = csv.DictWriter(buf, fieldnames=list(cols), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k) for k in cols})
    return buf.getvalue()


_EXPLAIN = {
    "k": Explanation("effective complexity of the layer's log-odds", True),
    "energy_rank": Explanation("99%-energy rank of the layer's log-odds", True),
    "kl_from_final": Explanation("mean KL(p_L || p_l), nats", True),
}


def _explanations() -> dict[str, Explanation]:
    """The legend of the layers table: the layer-wide columns and each step's declared ones."""
    out = dict(_EXPLAIN)
    for step in audit_steps(purpose="layers"):
        for name, meaning, identified in step.layer.columns:  # type: ignore[union-attr]
            out[name] = Explanation(meaning, identified)
    return out


def write_layers(res: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write ``layers.csv``, ``results.json``, ``report.html``/``report.md`` and
    ``figures/layers.png`` into ``folder``."""
    folder = Path(folder)
    figdir = folder / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    _figure(res, figdir / "layers.png")
    m = res["model"]
    bl = [Block("h1", f"allornone audit --layers: {m['name']}")]
    bl.append(
        Block(
            "p",
            f"Logit lens on {res['contexts']} contexts: each layer's hidden state at the last "
            f"token read through the final norm and the LM head (d = {m['d']}, V = {m['V']}, "
            f"{m['layers']} blocks; layer 0 = embeddings). An extension beyond the paper: its "
            f"theory is about the final layer. Probes and steering vectors on the labelled "
            f"sets ({', '.join(res.get('label_sets', [])) or 'none'}); relational linearity "
            f"from the subject at layer l to the model's own answer distribution, on "
            f"{', '.join(res.get('layer_relations', [])) or 'no relation'}. "
            f"Run time {fmt(res['runtime_s'])} s.",
        )
    )
    bl.append(Block("figure", "layers.png", "Per layer: energy rank, KL to the model, parallelism"))
    cols = list(layer_columns())
    bl.append(
        Block(
            "table",
            Table(cols, [[r.get(c) for c in cols] for r in res["layers"]], _explanations()),
        )
    )
    write_pages(bl, folder, bl[0].content)
    atomic_write_text(folder / "layers.csv", _csv(res["layers"]))
    out = dict(res) | {"figures": {"layers": "figures/layers.png"}}
    atomic_write_text(folder / "results.json", json.dumps(out, indent=1, allow_nan=False))
    return {"html": "report.html", "md": "report.md", "json": "results.json", "csv": "layers.csv"}


def _figure(res: dict[str, Any], path: Path) -> None:
    rows = res["layers"]
    x = [r["layer"] for r in rows]
    fig, axes = pyplot().subplots(1, 5, figsize=(20, 3.6))
    axes[0].plot(x, [r["energy_rank"] for r in rows], marker="o", label="energy rank")
    axes[0].plot(x, [r["k"] for r in rows], marker=".", label="k")
    axes[0].set_xlabel("layer")
    axes[0].set_ylabel("rank of the log-odds")
    axes[0].legend(fontsize=8)
    pos = [(r["layer"], r["kl_from_final"]) for r in rows if (r["kl_from_final"] or 0) > 0]
    if pos:  # the final layer (KL 0) has no place on a log axis
        axes[1].semilogy([p[0] for p in pos], [p[1] for p in pos], marker="o")
    axes[1].set_xlabel("layer")
    axes[1].set_ylabel("KL(p_L || p_l), nats")
    ident = [np.nan if r["logodds_corr"] is None else r["logodds_corr"] for r in rows]
    raw = [np.nan if r["euclid_cos"] is None else r["euclid_cos"] for r in rows]
    axes[2].plot(x, ident, marker="o", label="identified logodds_corr")
    axes[2].plot(x, raw, marker="x", label="raw euclid_cos")
    axes[2].set_xlabel("layer")
    axes[2].set_ylabel("parallelism (mean over families)")
    axes[2].legend(fontsize=8)
    nan = lambda v: np.nan if v is None else v  # noqa: E731
    for key, label, mark in (  # fractions on one [0, 1] axis
        ("rel_kl_faithfulness", "relations: KL probe faithfulness (raw)", "x"),
        ("probe_logodds_test_accuracy", "probes: identified accuracy", "s"),
        ("probe_test_accuracy", "probes: raw accuracy", "."),
    ):
        axes[3].plot(x, [nan(r.get(key)) for r in rows], marker=mark, label=label)
    axes[3].set_ylim(0, 1.02)
    axes[3].set_xlabel("layer")
    axes[3].set_ylabel("held-out fraction")
    axes[3].legend(fontsize=7)
    # R^2 runs from 1 down to large negative values: its own axis, symmetric-log below -1
    axes[4].plot(x, [nan(r.get("rel_dist_r2_test")) for r in rows], marker="o")
    axes[4].axhline(0.0, color="grey", lw=0.8, ls="--")
    axes[4].set_yscale("symlog", linthresh=1.0)
    axes[4].set_xlabel("layer")
    axes[4].set_ylabel("relations: identified dist. R^2\n(held out; < 0: worse than the mean)")
    save_figure(fig, path)


def summary_table(res: dict[str, Any]) -> str:
    """Plain aligned text: one line per layer."""
    rows = [
        (
            "layer",
            "k",
            "energy rank",
            "KL from final",
            "logodds_corr",
            "euclid_cos",
            "probe acc (id.)",
            "rel dist R2",
            "rel KL faith.",
        )
    ]
    for r in res["layers"]:
        rows.append(
            (
                str(r["layer"]),
                fmt(r["k"]),
                fmt(r["energy_rank"]),
                fmt(r["kl_from_final"]),
                fmt(r["logodds_corr"]),
                fmt(r["euclid_cos"]),
                fmt(r.get("probe_logodds_test_accuracy")),
                fmt(r.get("rel_dist_r2_test")),
                fmt(r.get("rel_kl_faithfulness")),
            )
        )
    return aligned_text(rows)
