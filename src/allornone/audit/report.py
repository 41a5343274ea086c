"""Writing the audit: report.html (self-contained), report.md, results.json +
arrays.safetensors, figures/*.png.

The report is built once as a list of blocks (:mod:`allornone.report`) from the typed
:class:`~.results.AuditResults` and rendered to HTML and Markdown, so both say the same
thing. Every table is followed by the one-line meaning of each column and whether it is
identified (:mod:`.explain`). The property sections come from the registered audit steps
and the statistics their properties declare (:mod:`allornone.registry`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..properties import PropertyResult
from ..registry import PropertySpec, property_spec, registered_names
from ..report import Block, Explanation, Table, aligned_text, fmt, mark, write_pages
from .explain import explain
from .figures import write_figures
from .results import AuditResults
from .step import AuditStep, audit_steps
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


# ---------------------------------------------------------------------------- the verdict first
def _median(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and v == v]
    return statistics.median(vals) if vals else None


def verdict_summary(res: AuditResults) -> list[dict[str, Any]]:
    """One row per measured property: its section, the number of items, the median of its
    headline identified statistic and of its raw counterpart, and the verdicts (all-or-none,
    not, undecided: too few held-out items)."""
    out = []
    for step in audit_steps():
        if step.section_key is not None:
            continue
        ps = res.of_kind(step.property)
        if not ps:
            continue
        spec = step.spec
        undecided = sum(p.details.get("decided") is False for p in ps)
        yes = sum(bool(p.all_or_none) for p in ps)
        ident = _median([p.identified.get(spec.headline) for p in ps])
        raw_key = spec.headline_raw
        raw = _median([p.raw.get(raw_key) for p in ps]) if raw_key else None
        out.append(
            {
                "property": spec.title,
                "items": len(ps),
                "identified": f"{spec.headline} {fmt(ident)}",
                "raw": f"{raw_key} {fmt(raw)}" if raw_key else "-",
                "verdict": f"all-or-none {yes}, not {len(ps) - yes - undecided}"
                + (f", undecided {undecided}" if undecided else ""),
            }
        )
    return out


def _demo_line(res: AuditResults) -> str | None:
    demo = res.equivalence_demo
    if demo is None or len(demo.models) < 2:
        return None
    ok = sum(bool(x.equivalent) for x in demo.models[1:])
    base = demo.models[0].stats
    moved: list[str] = []
    kept: list[str] = []
    for stat, ident in demo.stat_identified.items():
        a = base.get(stat)
        same = all(_close(a, m.stats.get(stat)) for m in demo.models[1:])
        (kept if same else moved).append(f"{stat}{'' if ident else ' (raw)'}")
    return (
        f"{ok} of {len(demo.models) - 1} sampled equivalent models have this distribution; "
        f"they moved {', '.join(moved) or 'nothing'} and kept {', '.join(kept) or 'nothing'}."
    )


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)), abs(float(b)))


def _summary_blocks(res: AuditResults) -> list[Block]:
    m, st = res.model, res.structure
    rows = verdict_summary(res)
    out = [
        Block("h2", "Summary"),
        Block(
            "p",
            f"{m.name}: d = {m.d}, V = {m.V}; on {st.n} contexts k = {st.k} (energy rank "
            f"{st.energy_rank}). Per property: the median over its items of the headline "
            "identified statistic and of its raw counterpart, and how many items are "
            "all-or-none; the sections below have every item.",
        ),
    ]
    if rows:
        cols = ["property", "items", "identified", "raw", "verdict"]
        out.append(
            Block(
                "table",
                Table(
                    cols,
                    [[r[c] for c in cols] for r in rows],
                    {
                        "items": Explanation(
                            "results of this property (families, relations...)", None
                        ),
                        "identified": Explanation(
                            "median of the headline identified statistic", True
                        ),
                        "raw": Explanation("median of its raw counterpart", False),
                        "verdict": Explanation(
                            "items whose raw property is all-or-none, not, or undecided (too "
                            "few held-out items)",
                            None,
                        ),
                    },
                ),
            )
        )
    line = _demo_line(res)
    if line:
        out.append(Block("p", line))
    return out


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
    b += _summary_blocks(res)
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
    # properties: one section per registered audit step, in the audit's order
    for step in audit_steps():
        if step.section is not None:
            b += step.section(res, figures)
        else:
            b += _property_section(res, step, figures)
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


def _property_section(res: AuditResults, step: AuditStep, figures: dict[str, str]) -> list[Block]:
    """The table of one property: its declared statistics (raw, identified, details,
    baseline, checks), the step's own columns, the condition, the figure."""
    spec = step.spec
    ps = res.of_kind(spec.name)
    if not ps:
        return []
    out = [Block("h2", spec.title), Block("p", spec.note)]
    raw_keys = _scalar_keys([p.raw for p in ps])
    id_keys = _scalar_keys([p.identified for p in ps])
    base_keys = _scalar_keys([p.baseline for p in ps])
    check_keys = _scalar_keys([_checks(p) for p in ps])
    detail_keys = [s.name for s in spec.of("details") if any(s.name in p.details for p in ps)]
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
        e = _stat(spec, k, "raw", False)
        if k in id_keys:
            e = Explanation(
                f"{e.text}, with the witness as given, in this model's coordinates (equals "
                f"'{k}' when all-or-none)",
                False,
            )
        cols[raw_head[k]] = e
    cols |= {k: _stat(spec, k, "identified", True) for k in id_keys}
    cols |= {k: _stat(spec, k, "details") for k in detail_keys}
    for k in base_keys:
        cols[f"baseline {k}"] = _baseline_explanation(spec, k)
    for k in check_keys:
        cols[f"check {k}"] = _stat(spec, k, "checks")
    cols["condition_size"] = _ex("condition_size")
    cols["all-or-none"] = Explanation(
        "the verdict: yes when the transfer condition holds on this model (condition_size <= "
        "tol); then the raw property holds in all equivalent models or in none",
        None,
    )
    if step.columns is not None:
        for c in step.columns(ps):
            headers.append(c.header)
            for row, v in zip(rows, c.values):
                row.append(v)
            cols[c.header] = Explanation(c.meaning, c.identified)
    out.append(Block("table", Table(headers, rows, cols)))
    conds = sorted({p.condition for p in ps})
    out.append(Block("p", "Condition: " + "; ".join(conds)))
    excl = sum(len(p.excluded or []) for p in ps)
    if excl:
        out.append(
            Block("p", f"{excl} items were excluded (e.g. multi-token words); see results.json.")
        )
    if step.figure_file in figures:
        out.append(Block("figure", figures[step.figure_file], spec.title))
    return out


def _stat(
    spec: PropertySpec, key: str, where: str, identified: bool | None | str = "auto"
) -> Explanation:
    """The declared meaning of ``key`` (the glossary's when the spec does not declare it);
    ``identified`` forces the mark (raw columns are never identified)."""
    s = spec.statistic(key, where) or spec.statistic(key)
    e = Explanation(s.meaning, s.identified) if s is not None else explain(key)
    return e if identified == "auto" else Explanation(e.text, identified)  # type: ignore[arg-type]


def _checks(p: PropertyResult) -> dict[str, Any]:
    """Measurements made beside the property (``checks`` of the result, e.g. the steering
    forward-pass ``prediction_error``)."""
    return dict(p.checks or {})


def _scalar(x: Any) -> Any:
    return x if x is None or isinstance(x, (int, float)) else None


def _baseline_explanation(spec: PropertySpec, key: str) -> Explanation:
    declared = spec.statistic(key, "baseline")
    if declared is not None:
        return Explanation(declared.meaning, declared.identified)
    if key.endswith("_std"):
        base = key[: -len("_std")]
        return Explanation(
            f"standard deviation of baseline '{base}' over the random draws",
            _stat(spec, base, "identified").identified,
        )
    return Explanation(
        f"'{key}' on the chance baseline ({spec.baseline_of}; mean over the draws)",
        _stat(spec, key, "identified").identified,
    )


def _scalar_keys(parts: Sequence[Mapping[str, Any]]) -> list[str]:
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
def _headline(p: PropertyResult) -> str:
    key: str | None = property_spec(p.property).headline if _known(p.property) else None
    if key not in p.identified:
        key = next(iter(p.identified), None)
    val = f"{key}={fmt(p.identified.get(key))}" if key else "-"
    if p.details.get("decided") is False:  # too few held-out items, or a trivial figure
        val = str(p.details.get("note") or "not decided").split(";")[0]
    verdict = "all-or-none" if p.all_or_none else "NOT all-or-none"
    return f"{val}; {verdict}"


def _known(name: str) -> bool:
    return name in registered_names()


def summary_table(res: AuditResults) -> str:
    """Plain aligned text: the headline numbers of the audit."""
    res = _typed(res)
    m, st = res.model, res.structure
    rows: list[tuple[str, str, str]] = [("item", "value", "identified? / verdict")]
    for v in verdict_summary(res):  # the verdict first: one line per property
        head = f"{v['property']} ({v['items']})"[:48]
        rows.append((head, f"{v['identified']}; raw {v['raw']}", v["verdict"]))
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
