"""The audit: extract representations, compute the structure, run every property, and show the
equivalence class on the model itself. Returns typed results (:class:`.results.AuditResults`;
written as results.json + arrays.safetensors, schema: docs/RESULTS_SCHEMA.md).

The pipeline only needs a model object with ``name``, ``d``, ``V``, ``tokens``,
``embed(texts, batch_size=, progress=)``, ``unembedding()`` and ``word_tokens(words)``
(:class:`allornone.models.LanguageModel` has them; tests pass a tiny stand-in). The inputs
live in :mod:`.inputs`, the restricted structures and the equivalence demonstration in
:mod:`.demo`, the progress bar in :mod:`.steps`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._hashing import paths_sha256
from .._validation import AllOrNoneError
from ..linalg import memoized_r_factors
from ..predictor import NextTokenPredictor
from ..properties import PropertyResult
from ..store import contexts_digest
from ..structure import structure
from . import builtin as _builtin  # noqa: F401 - registers the built-in steps
from .demo import equivalence_demo, reduced, restricted_structures
from .inputs import (
    FLOAT32_FLOOR,
    AuditConfig,
    ContextSets,
    Inputs,
    WordCache,
    load_inputs,
    select_subjects,
    single_ids,
    word_contexts,
    word_model,
)
from .plugins import plugin_record
from .results import AuditResults, normalise, stored
from .step import (
    Geometry,
    StepInputs,
    add_step_contexts,
    audit_steps,
    load_step_data,
    results_of,
)
from .steps import Steps
from .store import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "STEPS",
    "AuditConfig",
    "ContextSets",
    "Inputs",
    "build_results",
    "equivalence_demo",
    "load_inputs",
    "load_model",
    "model_facts",
    "reduced",
    "restricted_structures",
    "run_audit",
    "select_subjects",
    "single_ids",
]


#: The last step: sampled equivalent models of a restricted problem (AuditConfig.steps may name it).
DEMO = "equivalence class"


def step_names() -> list[str]:
    """The progress-bar steps of one audit: loading, the structures, every registered
    property step (:func:`~allornone.audit.step.audit_steps`), the equivalence class."""
    head = ["load data", "load model", "embed contexts", "structure", "restricted structure"]
    return head + [s.name for s in audit_steps()] + [DEMO]


def _names(cfg: AuditConfig) -> list[str]:
    if cfg.steps is None:
        return step_names()
    return step_names()[:5] + [n for n in step_names()[5:] if n in cfg.steps]


#: The steps of the audit with the built-in properties (plugins add theirs: :func:`step_names`).
STEPS = step_names()


# ---------------------------------------------------------------------------- main entry
def run_audit(cfg: AuditConfig, model: Any = None) -> AuditResults:
    """Run the whole audit; returns its typed results (``schema_version`` 2.0).

    ``model``: an already loaded model object (else ``cfg.model`` is loaded). Write them
    with :func:`allornone.audit.write_report` (or only the data with
    :func:`allornone.audit.write_results`); read them back with
    :func:`allornone.audit.load_results`.
    """
    cfg = cfg.sized()
    t0 = time.perf_counter()
    with memoized_r_factors(), Steps(_names(cfg), cfg.progress) as steps:
        return _run(cfg, model, steps, t0)


def build_results(res: dict[str, Any]) -> AuditResults:
    """Typed results from the tree the run assembles (property records already built)."""
    props_ = res.pop("properties", [])
    out = AuditResults.from_tree(normalise(res))
    return replace(out, properties=tuple(props_))


def _run(cfg: AuditConfig, model: Any, steps: Steps, t0: float) -> AuditResults:
    # every user file is parsed and validated before the model loads (all problems at once)
    inp, step_data = steps.run("load data", lambda: (load_inputs(cfg), load_step_data(cfg)))
    lm = steps.run("load model", lambda: model if model is not None else load_model(cfg))
    lm = WordCache(lm)  # each word is tokenised once, whichever step asks
    if word_model(lm) is not None:
        word_contexts(lm, inp)
    select_subjects(lm, inp, cfg, multi_token=True)
    rel_inputs = inp.relations
    if inp.word_contexts:
        inp.dropped += [
            {
                "kind": "relation",
                "name": r.name,
                "reason": "relational linearity needs contexts s + q; word2vec contexts are "
                "single words (the relation is used for the restricted structures only)",
            }
            for r in rel_inputs
        ]
        rel_inputs = []
    warn_dropped(inp, steps)
    ctx = ContextSets.build(inp, seed=cfg.seed)
    add_step_contexts(ctx, step_data, lm, cfg)
    ctx.freeze()
    F = steps.run("embed contexts", lambda: _embed(lm, ctx.all, cfg))
    G = np.asarray(lm.unembedding())
    # float64 rows extracted from a float32 model: tolerances at float32 precision
    # (FLOAT32_FLOOR = 1.2e-7, float32 epsilon rounded up: the value every report used)
    P = NextTokenPredictor(F, G, contexts=ctx.all, tokens=list(lm.tokens), eps=FLOAT32_FLOOR)
    res: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "allornone", "version": __version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": asdict(cfg),
        "model": model_facts(lm),
        "contexts": {"n": len(ctx.all), "sets": ctx.counts()},
        "inputs": inp.summary(),
    }
    if cfg.plugins:
        res["plugins"] = plugin_record(cfg.plugins)
    main_rows = ctx.rows("main")
    Pm = P.subset(rows=main_rows)
    st = steps.run("structure", lambda: structure(Pm))
    res["structure"] = {
        "context_set": "main (labelled texts, relation subjects and prompts)",
        **st.summary(),
        "singular_values": st.singular_values,
    }
    geo = Geometry.build(Pm, st)
    res["restricted"] = steps.run(
        "restricted structure", lambda: restricted_structures(P, ctx, inp, lm, cfg)
    )
    view = StepInputs(
        lm=lm,
        P=P,
        ctx=ctx,
        inputs=inp,
        geo=geo,
        seed=cfg.seed,
        kl=cfg.kl,
        relations=tuple(rel_inputs),
    )
    results: list[PropertyResult] = []
    for step in audit_steps():
        if cfg.steps is not None and step.name not in cfg.steps:
            continue
        mine = replace(view, data=step_data.get(step.name), options=dict(cfg.options))
        out = steps.run(step.name, partial(step.run, mine))
        if step.section_key is not None:
            res[step.section_key] = out
        else:
            results += results_of(step, out)
    res["properties"] = [stored(r) for r in results]
    if cfg.steps is not None:
        res["inputs"]["notes"].append(f"only the steps {cfg.steps} were run")
    demo = cfg.steps is None or DEMO in cfg.steps
    if demo and inp.relations:
        res["equivalence_demo"] = steps.run(DEMO, lambda: equivalence_demo(P, ctx, inp, lm, cfg))
    elif demo:  # the demonstration's restricted problem is a relation's prompts and answers
        res["inputs"]["notes"].append("equivalence demonstration skipped: no usable relation")
    res["certificate"] = certificate(cfg, ctx.all, from_config=model is None)
    res["timings_s"] = steps.timings
    res["runtime_s"] = round(time.perf_counter() - t0, 2)
    return build_results(res)


#: Packages whose versions the certificate records.
CERTIFIED_PACKAGES = (
    "allornone",
    "numpy",
    "scipy",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "gguf",
    "gensim",
)


def certificate(cfg: AuditConfig, contexts: list[str], *, from_config: bool) -> dict[str, Any]:
    """What another lab needs to check that the figures came from this model and these data:
    the command line, package versions, the SHA-256 of the model files and of every input
    file, a digest of the contexts (in order) and the seed (``allornone verify`` reads it)."""
    import platform
    from importlib import metadata

    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    files: list[str] = []
    for value in (cfg.concepts, cfg.relations, cfg.labels, *cfg.options.values()):
        for v in [value] if isinstance(value, str) else list(value or []):
            if isinstance(v, str) and Path(v).exists():
                files.append(v)
    model_files: dict[str, str] = {}
    if from_config:
        from ..models.files import model_files as files_of

        model_files = paths_sha256(files_of(cfg.model))
    return {
        "argv": list(sys.argv),
        "versions": {p: version(p) for p in CERTIFIED_PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "model": cfg.model if from_config else None,
        "model_files": model_files,
        "input_files": paths_sha256(files),
        "contexts_sha256": contexts_digest(contexts),
        "n_contexts": len(contexts),
        "seed": cfg.seed,
    }


def warn_dropped(inp: Inputs, steps: Steps | None = None) -> None:
    """Say on stderr what the audit will not measure, and what the readers dropped.

    User families and relations are listed one per line; built-in relations in one line.
    The same list is in results.json under ``inputs.dropped``."""
    lines: list[str] = []
    for d in inp.dropped:
        builtin = d["kind"] == "relation" and not inp.user_relations
        builtin |= d["kind"] == "family" and not inp.user_concepts
        if not builtin:
            lines.append(f"allornone: warning: {d['kind']} {d['name']!r} dropped: {d['reason']}")
    n_builtin = sum(
        (d["kind"] == "relation" and not inp.user_relations)
        or (d["kind"] == "family" and not inp.user_concepts)
        for d in inp.dropped
    )
    if n_builtin:
        lines.append(
            f"allornone: note: {n_builtin} built-in families/relations are not measured "
            "(too few single-token words for this model, or --quick); see results.json "
            "inputs.dropped"
        )
    for note in inp.notes[:20]:
        lines.append(f"allornone: note: {note}")
    if len(inp.notes) > 20:
        lines.append(f"allornone: note: ... and {len(inp.notes) - 20} more notes in results.json")
    if not lines:
        return
    text = "\n".join(lines)
    if steps is not None and hasattr(steps.bar, "write"):
        steps.bar.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def load_model(cfg: AuditConfig) -> Any:
    from ..models import load

    opts: dict[str, Any] = {}
    if cfg.device:
        opts["device"] = cfg.device
    if cfg.dtype:
        opts["dtype"] = cfg.dtype
    if cfg.device_map:
        opts["device_map"] = cfg.device_map
    if cfg.batch_size:
        opts["batch_size"] = cfg.batch_size
    return load(cfg.model, **opts)


def model_facts(lm: Any) -> dict[str, Any]:
    return {
        "name": str(getattr(lm, "name", "model")),
        "d": int(lm.d),
        "V": int(lm.V),
        "tied": getattr(lm, "tied", None),
        "logit_check": getattr(lm, "logit_check", None),
        "logit_check_scale": getattr(lm, "logit_check_scale", None),
        "logit_check_tol": getattr(lm, "logit_check_tol", None),
        "head_notes": list(getattr(lm, "head_notes", []) or []),
        "head_warnings": list(getattr(lm, "head_warnings", []) or []),
    }


def _embed(lm: Any, texts: list[str], cfg: AuditConfig) -> np.ndarray:
    kw: dict[str, Any] = {"progress": cfg.progress}
    if cfg.batch_size:
        kw["batch_size"] = cfg.batch_size
    F = np.asarray(lm.embed(texts, **kw), dtype=np.float64)
    if F.shape != (len(texts), lm.d):
        raise AllOrNoneError(f"model returned F of shape {F.shape}, expected {(len(texts), lm.d)}")
    if not np.isfinite(F).all():
        raise AllOrNoneError("the model produced non-finite representations (NaN/inf)")
    return F
