"""Writing the audit: report.html (self-contained), report.md, results.json +
arrays.safetensors, figures/*.png.

The report is built once as a list of blocks (:mod:`allornone.report`) from the typed
:class:`~.results.AuditResults` and rendered to HTML and Markdown, so both say the same
thing. Every table is followed by the one-line meaning of each column and whether it is
identified (:mod:`.explain`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..report import Block, Explanation, Table, aligned_text, fmt, mark, write_pages
from .explain import explain
from .figures import write_figures
from .results import AuditResults, PropertyRecord
from .store import write_results


def _ex(key: str, identified: bool | None | str = "auto") -> Explanation:
    e = explain(key)
    return e if identified == "auto" else Explanation(e.text, identified)  # type: ignore[arg-type]


def _typed(res: Any) -> AuditResults:
    if isinstance(res, AuditResults):
        return res
    raise TypeError(
        f"expected AuditResults (from run_audit or load_results), got {type(res).__name__}"
    )


# ---------------------------------------------------------------------------- blocks
def build_blocks(res: AuditResults, figures: dict[str, str]) -> list[Block]:
    """The report as blocks; ``figures``: figure name -> PNG file name in figures/."""
    b: list[Block] = []
    m = res.model
    b.append(Block("h1", f"allornone audit: {m.name}"))
    b.append(
        Block(
            "p",
            f"allornone {res.tool['version']}, results schema {res.schema_version}, "
            f"{res.created}, run time {fmt(res.runtime_s)} s, seed "
            f"{res.config['seed']}{' (quick mode)' if res.config['quick'] else ''}.",
        )
    )
    b.append(
        Block(
            "note",
            "How to read this report: a statistic marked <b>identified</b> is computed from the "
            "next-token distribution alone, so every model with the same distribution has the "
            "same value (a fact about the model's behaviour). <b>NOT identified</b> means the "
            "value depends on the parametrisation (e.g. Euclidean geometry of f and g): an "
            "equivalent model can change it, as the last section shows on this model. "
            "<b>fact</b> marks counts and settings. A property is <b>all-or-none</b> when its "
            "transfer condition holds: then it holds in all equivalent models or in none.",
        )
    )
    # model
    b.append(Block("h2", "Model"))
    rows: list[list[Any]] = [
        ["name", m.name],
        ["d", m.d],
        ["V", m.V],
        ["tied head", m.tied],
        ["logit_check", m.logit_check],
    ]
    b.append(
        Block(
            "table",
            Table(
                ["quantity", "value", "meaning", "identified?"],
                [r + [_ex(r[0]).text, mark(_ex(r[0]).identified)] for r in rows],
            ),
        )
    )
    for note in m.head_notes:
        b.append(Block("p", f"Head: {note}"))
    for w in m.head_warnings:
        b.append(Block("p", f"WARNING: {w}"))
    # structure
    st = res.structure
    b.append(Block("h2", "Structure on the chosen contexts"))
    b.append(
        Block(
            "p",
            f"{st.n} contexts (the labelled texts, the relation subjects and prompts) and all "
            f"{st.V} tokens. {st.decision}",
        )
    )
    keys = ["k", "energy_rank", "dim_M", "dim_N", "dim_E", "dim_J_f", "dim_J_g", "gap"]
    b.append(
        Block(
            "table",
            Table(
                ["quantity", "value", "meaning", "identified?"],
                [[k, getattr(st, k), _ex(k).text, mark(_ex(k).identified)] for k in keys],
            ),
        )
    )
    if "spectrum" in figures:
        b.append(Block("figure", figures["spectrum"], "Spectrum of L (identified)."))
    if res.restricted:
        b.append(Block("h2", "Structure on restricted token sets (k < d)"))
        b.append(
            Block(
                "p",
                "Restricting the vocabulary to a relation's answers or a family's tokens gives "
                "a low-rank problem: there k < d and junk directions (J_f, J_g) exist, which "
                "equivalent models may fill arbitrarily.",
            )
        )
        cols = ["n", "V", "k", "energy_rank", "dim_M", "dim_N", "dim_J_f", "dim_J_g"]
        b.append(
            Block(
                "table",
                Table(
                    ["set", "name"] + cols,
                    [[r.kind, r.name] + [getattr(r, c) for c in cols] for r in res.restricted],
                    {c: _ex(c) for c in cols},
                ),
            )
        )
    # properties
    b += _property_section(res, "parallelism", "Parallelism of concept directions", figures)
    b += _analogy_section(res)
    b += _property_section(res, "relational", "Relational linearity", figures, fig="relations")
    b += _property_section(res, "probing", "Linear probing", figures)
    b += _property_section(res, "steering", "Linear steering", figures)
    b += _equivalence_section(res, figures)
    b += _inputs_section(res)
    return b


def _inputs_section(res: AuditResults) -> list[Block]:
    """Families and relations not measured (with the reason), and what readers dropped."""
    inputs = res.extra.get("inputs") or {}
    dropped, notes = inputs.get("dropped") or [], inputs.get("notes") or []
    if not dropped and not notes:
        return []
    out = [Block("h2", "Inputs not measured")]
    if dropped:
        out.append(
            Block(
                "table",
                Table(
                    ["kind", "name", "reason"],
                    [[d.get("kind"), d.get("name"), d.get("reason")] for d in dropped],
                    {},
                ),
            )
        )
    if notes:
        out.append(Block("p", "Dropped while reading: " + "; ".join(notes[:20])))
    return out


def _analogy_section(res: AuditResults) -> list[Block]:
    an = res.analogy
    if not an.sections:
        return []
    cols = ["n_questions", "acc_raw", "acc_identified"]
    w2v = any("acc_input_vectors" in s.extra for s in an.sections)
    rows: list[list[Any]] = [[s.section] + [getattr(s, c) for c in cols] for s in an.sections]
    overall = an.overall or {}
    rows.append(
        ["overall", sum(s.n_questions for s in an.sections)]
        + [overall.get("acc_raw"), overall.get("acc_identified")]
    )
    ex = {c: _ex(c) for c in cols} | {
        "n_questions": Explanation("questions with all four words single tokens", None)
    }
    if w2v:  # word2vec: gensim's figure (input vectors) beside the output-vector one
        cols.append("acc_input_vectors")
        for s, row in zip(an.sections, rows):
            row.append(s.extra.get("acc_input_vectors"))
        rows[-1].append(overall.get("acc_input_vectors"))
        ex["acc_raw"] = Explanation("3CosAdd on the output vectors g = syn1neg", False)
        ex["acc_input_vectors"] = Explanation(
            "3CosAdd on the input vectors (wv): gensim's evaluate_word_analogies", False
        )
    return [
        Block("h3", "Analogy accuracy (3CosAdd) per section"),
        Block("table", Table(["section"] + cols, rows, ex)),
    ]


_TITLES_NOTE = {
    "parallelism": "Do the differences g(b) - g(a) of a family point the same way? The raw "
    "Euclidean cosine is not identified; the Cov(f) cosine (the correlation, across contexts, "
    "of the log-ratio columns) is. Raw parallelism is all-or-none only when M = R^d.",
    "relational": "Is f(s + q) an affine function of f(s)? Fitted on a train split, evaluated "
    "on held-out subjects. The distribution form L[s+q, Y] = C L[s, :] + beta is identified; "
    "the strong form is not. The verdict uses the condition P_Gamma A (M_S cap N^perp) = 0.",
    "probing": "Can a linear read-out of f(x) predict the label? The probe on raw f uses a "
    "Euclidean penalty (not identified); the probe parametrised on log-odds rows is identified. "
    "It transfers to every equivalent model iff w lies in N + M_S^perp.",
    "steering": "Adding alpha v to f(x) shifts every log-odds by alpha g0(y)^T v. v is the "
    "difference of class means of f (train split); shifts are measured on held-out contexts of "
    "the first class. It transfers iff v lies in M + N^perp.",
}


def _property_section(
    res: AuditResults, kind: str, title: str, figures: dict[str, str], fig: str | None = None
) -> list[Block]:
    ps = res.of_kind(kind)
    if not ps:
        return []
    out = [Block("h2", title), Block("p", _TITLES_NOTE.get(kind, ""))]
    raw_keys = _scalar_keys([p.raw for p in ps])
    id_keys = _scalar_keys([p.identified for p in ps])
    base_keys = _scalar_keys([p.baseline for p in ps])
    check_keys = _scalar_keys([_checks(p) for p in ps])
    detail_keys = [k for k in _DETAIL_COLUMNS.get(kind, ()) if any(k in p.details for p in ps)]
    # a raw statistic with the name of an identified one gets its own header ("raw x")
    raw_head = {k: f"raw {k}" if k in id_keys else k for k in raw_keys}
    headers = ["name"] + [raw_head[k] for k in raw_keys] + id_keys + detail_keys
    headers += [f"baseline {k}" for k in base_keys] + [f"check {k}" for k in check_keys]
    headers += ["condition_size", "all-or-none"]
    rows = [
        [p.name]
        + [p.raw.get(k) for k in raw_keys]
        + [p.identified.get(k) for k in id_keys]
        + [_scalar(p.details.get(k)) for k in detail_keys]
        + [p.baseline.get(k) for k in base_keys]
        + [_checks(p).get(k) for k in check_keys]
        + [p.condition_size, p.all_or_none]
        for p in ps
    ]
    cols: dict[str, Explanation] = {}
    for k in raw_keys:
        e = _ex(k, False)
        if k in id_keys:
            e = Explanation(
                f"{e.text}, with the witness as given, in this model's coordinates (equals "
                f"'{k}' when all-or-none)",
                False,
            )
        cols[raw_head[k]] = e
    cols |= {k: _ex(k, True) for k in id_keys}
    cols |= {k: _ex(k) for k in detail_keys}
    for k in base_keys:
        cols[f"baseline {k}"] = _baseline_explanation(kind, k)
    for k in check_keys:
        cols[f"check {k}"] = _ex(k)
    cols["condition_size"] = _ex("condition_size")
    cols["all-or-none"] = Explanation(
        "the verdict: yes when the transfer condition holds on this model (condition_size <= "
        "tol); then the raw property holds in all equivalent models or in none",
        None,
    )
    if kind == "relational":
        _relational_columns(ps, headers, rows, cols)
    out.append(Block("table", Table(headers, rows, cols)))
    conds = sorted({p.condition for p in ps})
    out.append(Block("p", "Condition: " + "; ".join(conds)))
    excl = sum(len(p.excluded or []) for p in ps)
    if excl:
        out.append(
            Block("p", f"{excl} items were excluded (e.g. multi-token words); see results.json.")
        )
    name = fig or kind
    if name in figures:
        out.append(Block("figure", figures[name], title))
    return out


#: Scalars of ``details`` shown as columns (they are not statistics of the property).
_DETAIL_COLUMNS = {"steering": ("v_norm",)}

#: What each property's baseline is, for the legend.
_BASELINE_OF = {
    "parallelism": "random token pairs, as many as the family's",
    "context": "random context pairs, as many as the family's",
}


def _checks(p: PropertyRecord) -> dict[str, Any]:
    """Measurements made beside the property (``checks`` of the result, e.g. the steering
    forward-pass ``prediction_error``)."""
    checks = getattr(p, "checks", None)
    if checks is None:
        checks = p.extra.get("checks")
    return dict(checks) if isinstance(checks, dict) else {}


def _scalar(x: Any) -> Any:
    return x if x is None or isinstance(x, (int, float)) else None


def _baseline_explanation(kind: str, key: str) -> Explanation:
    if key == "draws":
        return _ex("draws")
    if key == "majority":
        return _ex("majority")
    if key.endswith("_std"):
        base = key[: -len("_std")]
        return Explanation(
            f"standard deviation of baseline '{base}' over the random draws",
            _ex(base).identified,
        )
    what = _BASELINE_OF.get(kind, "random items")
    return Explanation(
        f"'{key}' on the chance baseline ({what}; mean over the draws)", _ex(key).identified
    )


def _relational_columns(
    ps: tuple[PropertyRecord, ...], headers: list[str], rows: list[list[Any]], cols: dict
) -> None:
    """Subjects used, held-out count and the faithfulness interval (or 'too few')."""
    headers += ["subjects", "held out", "dist_faithfulness 95% CI"]
    for p, row in zip(ps, rows):
        d = p.details
        ci = (d.get("ci") or {}).get("dist_faithfulness")
        if d.get("decided") is False:
            txt = f"too few subjects to decide ({d.get('n_test')} held out)"
        elif ci and None not in ci:
            txt = f"[{fmt(ci[0])}, {fmt(ci[1])}]"
        else:
            txt = "-"
        row += [d.get("n_subjects"), d.get("n_test"), txt]
    cols["subjects"] = Explanation("subjects with a single-token object (train + held out)", None)
    cols["held out"] = Explanation("held-out subjects the faithfulness is measured on", None)
    cols["dist_faithfulness 95% CI"] = Explanation(
        "percentile bootstrap over held-out subjects; fewer than 10 held out: too few to decide",
        True,
    )


def _scalar_keys(parts: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for part in parts:
        for k, v in (part or {}).items():
            if (v is None or isinstance(v, (int, float))) and k not in keys:
                keys.append(k)
    return keys


def _equivalence_section(res: AuditResults, figures: dict[str, str]) -> list[Block]:
    demo = res.equivalence_demo
    if demo is None:
        return []
    pr = demo.problem
    out = [
        Block("h2", "The equivalence class on this model"),
        Block(
            "p",
            f"Restricted problem: the prompts of relation '{pr.relation}' ({pr.n} contexts) "
            f"and its {pr.V} answer tokens, d = {pr.d}, k = {pr.k} (J_f: {pr.dim_J_f} "
            f"dims, J_g: {pr.dim_J_g} dims). Models of other widths with exactly the same "
            "next-token distribution were sampled (THEORY.md 4: f~ = T[A e_f; u; 0], "
            "g~ = T^-T[A^-T e_g; 0; w; 0] + c with random T, A, c and junk u, w; the last one "
            "with adversarial junk) and checked with equivalence(); ranks of every model are "
            f"decided with the original's relative tolerance {fmt(pr.rank_tol)} "
            "(their spectra of L are identical).",
        ),
    ]
    stats = list(demo.stat_identified)
    cols = ["width", "equivalent", "max_logodds_gap", "mean_kl", "residual_f", "residual_g"]
    rows = [
        [m.label, m.junk] + [getattr(m, c) for c in cols] + [m.stats.get(s) for s in stats]
        for m in demo.models
    ]
    ex = {c: _ex(c) for c in cols} | {"width": Explanation("width d~ of the sampled model", None)}
    for s in stats:
        ex[s] = _ex(s, bool(demo.stat_identified[s]))
    out.append(Block("table", Table(["model", "junk"] + cols + stats, rows, ex)))
    if "equivalence" in figures:
        out.append(Block("figure", figures["equivalence"], "Raw statistics move, identified stay."))
    return out


# ---------------------------------------------------------------------------- all outputs
def write_report(res: AuditResults, folder: Path) -> dict[str, str]:
    """Write every output into ``folder`` (which must exist); returns name -> relative path.

    report.html, report.md, results.json + arrays.safetensors (:func:`.store.write_results`)
    and figures/*.png. ``res``: the :class:`~.results.AuditResults` of
    :func:`~allornone.audit.run_audit` or :func:`~allornone.audit.load_results`.
    """
    res = _typed(res)
    folder = Path(folder)
    figdir = folder / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    figures = write_figures(res, figdir)
    res = replace(res, figures={k: f"figures/{v}" for k, v in figures.items()})
    write_pages(build_blocks(res, figures), folder, f"allornone audit: {res.model.name}")
    files = write_results(res, folder)
    return {"html": "report.html", "md": "report.md", **files, **res.figures}


# ---------------------------------------------------------------------------- terminal
_HEADLINE = {
    "parallelism": "logodds_corr",
    "relational": "dist_faithfulness",
    "probing": "logodds_test_accuracy",
    "steering": "target_shift",
}


def _headline(p: PropertyRecord) -> str:
    key = _HEADLINE.get(p.property)
    if key not in p.identified:
        key = next(iter(p.identified), None)
    val = f"{key}={fmt(p.identified.get(key))}" if key else "-"
    if p.property == "relational" and p.details.get("decided") is False:
        val = f"too few subjects to decide ({p.details.get('n_test')} held out)"
    verdict = "all-or-none" if p.all_or_none else "NOT all-or-none"
    return f"{val}; {verdict}"


def summary_table(res: AuditResults) -> str:
    """Plain aligned text: the headline numbers of the audit."""
    res = _typed(res)
    m, st = res.model, res.structure
    rows: list[tuple[str, str, str]] = [("item", "value", "identified?")]
    rows += [
        ("model", f"{m.name} (d={m.d}, V={m.V})", "fact"),
        ("logit check", fmt(m.logit_check), "fact"),
        ("k / energy rank", f"{st.k} / {st.energy_rank} (n={st.n})", "identified"),
        ("dim M / dim N", f"{st.dim_M} / {st.dim_N}", "NOT identified"),
    ]
    for r in res.restricted[:4]:
        rows.append((f"k on {r.name}", f"{r.k} (d={r.d}, V={r.V})", "identified"))
    for p in res.properties:
        rows.append((f"{p.property}: {p.name}"[:48], _headline(p), "identified"))
    demo = res.equivalence_demo
    if demo is not None:
        ok = sum(bool(x.equivalent) for x in demo.models[1:])
        rows.append(("equivalent samples", f"{ok}/{len(demo.models) - 1} equivalent", "identified"))
    return aligned_text(rows)
