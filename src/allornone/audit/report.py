"""Writing the audit: report.html (self-contained), report.md, results.json, figures/*.png.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and
rendered to HTML and Markdown, so both say the same thing. Every table is followed by the
one-line meaning of each column and whether it is identified (:mod:`.explain`).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .explain import Explanation, explain, mark
from .figures import write_figures

Cell = Any


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    #: column header -> explanation (only for columns holding numbers)
    columns: dict[str, Explanation] = field(default_factory=dict)


@dataclass
class Block:
    kind: str  # "h1" | "h2" | "p" | "table" | "figure" | "note"
    content: Any
    caption: str = ""


def fmt(x: Cell) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x != x:
            return "–"
        if x == 0:
            return "0"
        a = abs(x)
        return f"{x:.3g}" if 1e-3 <= a < 1e5 else f"{x:.2e}"
    if isinstance(x, (list, tuple)):
        return ", ".join(fmt(v) for v in x)
    return str(x)


def _ex(key: str, identified: bool | None = "auto") -> Explanation:  # type: ignore[assignment]
    e = explain(key)
    return e if identified == "auto" else Explanation(e.text, identified)


# ---------------------------------------------------------------------------- blocks
def build_blocks(res: dict[str, Any], figures: dict[str, str]) -> list[Block]:
    b: list[Block] = []
    m = res["model"]
    b.append(Block("h1", f"allornone audit: {m['name']}"))
    b.append(
        Block(
            "p",
            f"allornone {res['tool']['version']}, results schema {res['schema_version']}, "
            f"{res['created']}, run time {fmt(res.get('runtime_s'))} s, seed "
            f"{res['config']['seed']}{' (quick mode)' if res['config']['quick'] else ''}.",
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
    rows = [
        ["name", m["name"]],
        ["d", m["d"]],
        ["V", m["V"]],
        ["tied head", m.get("tied")],
        ["logit_check", m.get("logit_check")],
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
    for note in m.get("head_notes", []):
        b.append(Block("p", f"Head: {note}"))
    for w in m.get("head_warnings", []):
        b.append(Block("p", f"WARNING: {w}"))
    # structure
    st = res["structure"]
    b.append(Block("h2", "Structure on the chosen contexts"))
    b.append(
        Block(
            "p",
            f"{st['n']} contexts (the labelled texts, the relation subjects and prompts) and all "
            f"{st['V']} tokens. {st['decision']}",
        )
    )
    keys = ["k", "energy_rank", "dim_M", "dim_N", "dim_E", "dim_J_f", "dim_J_g", "gap"]
    b.append(
        Block(
            "table",
            Table(
                ["quantity", "value", "meaning", "identified?"],
                [[k, st.get(k), _ex(k).text, mark(_ex(k).identified)] for k in keys],
            ),
        )
    )
    if "spectrum" in figures:
        b.append(Block("figure", figures["spectrum"], "Spectrum of L (identified)."))
    rs = res.get("restricted", [])
    if rs:
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
                    [[r["kind"], r["name"]] + [r.get(c) for c in cols] for r in rs],
                    {c: _ex(c) for c in cols},
                ),
            )
        )
    # properties
    b += _property_section(res, "parallelism", "Parallelism of concept directions", figures)
    an = res.get("analogy", {})
    if an.get("sections"):
        b.append(Block("h3", "Analogy accuracy (3CosAdd) per section"))
        cols = ["n_questions", "acc_raw", "acc_identified"]
        rows = [[s["section"]] + [s[c] for c in cols] for s in an["sections"]]
        rows.append(
            ["overall", sum(s["n_questions"] for s in an["sections"])]
            + [an["overall"]["acc_raw"], an["overall"]["acc_identified"]]
        )
        b.append(
            Block(
                "table",
                Table(
                    ["section"] + cols,
                    rows,
                    {c: _ex(c) for c in cols}
                    | {
                        "n_questions": Explanation(
                            "questions with all four words single tokens", None
                        )
                    },
                ),
            )
        )
    b += _property_section(res, "relational", "Relational linearity", figures, fig="relations")
    b += _property_section(res, "probing", "Linear probing", figures)
    b += _property_section(res, "steering", "Linear steering", figures)
    b += _equivalence_section(res, figures)
    return b


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
    res: dict[str, Any], kind: str, title: str, figures: dict[str, str], fig: str | None = None
) -> list[Block]:
    ps = [p for p in res.get("properties", []) if p["property"] == kind]
    if not ps:
        return []
    out = [Block("h2", title), Block("p", _TITLES_NOTE.get(kind, ""))]
    raw_keys = _scalar_keys(ps, "raw")
    id_keys = _scalar_keys(ps, "identified")
    base_keys = _scalar_keys(ps, "baseline")
    headers = ["name"] + raw_keys + id_keys + [f"baseline {k}" for k in base_keys]
    headers += ["condition_size", "all-or-none"]
    rows = []
    for p in ps:
        rows.append(
            [p["name"]]
            + [p["raw"].get(k) for k in raw_keys]
            + [p["identified"].get(k) for k in id_keys]
            + [p["baseline"].get(k) for k in base_keys]
            + [p["condition_size"], p["all_or_none"]]
        )
    cols = {k: _ex(k, False) for k in raw_keys} | {k: _ex(k, True) for k in id_keys}
    for k in base_keys:
        e = _ex(k)
        cols[f"baseline {k}"] = Explanation(f"chance level of '{k}' (random items)", e.identified)
    cols["condition_size"] = _ex("condition_size")
    cols["all-or-none"] = Explanation(
        "yes: the raw property holds in all equivalent models or in none", True
    )
    out.append(Block("table", Table(headers, rows, cols)))
    conds = sorted({p["condition"] for p in ps})
    out.append(Block("p", "Condition: " + "; ".join(conds)))
    excl = sum(len(p.get("excluded") or []) for p in ps)
    if excl:
        out.append(
            Block("p", f"{excl} items were excluded (e.g. multi-token words); see results.json.")
        )
    name = fig or kind
    if name in figures:
        out.append(Block("figure", figures[name], title))
    return out


def _scalar_keys(ps: list[dict[str, Any]], part: str) -> list[str]:
    keys: list[str] = []
    for p in ps:
        for k, v in (p.get(part) or {}).items():
            if (v is None or isinstance(v, (int, float))) and k not in keys:
                keys.append(k)
    return keys


def _equivalence_section(res: dict[str, Any], figures: dict[str, str]) -> list[Block]:
    demo = res.get("equivalence_demo")
    if not demo:
        return []
    pr = demo["problem"]
    out = [
        Block("h2", "The equivalence class on this model"),
        Block(
            "p",
            f"Restricted problem: the prompts of relation '{pr['relation']}' ({pr['n']} contexts) "
            f"and its {pr['V']} answer tokens, d = {pr['d']}, k = {pr['k']} (J_f: {pr['dim_J_f']} "
            f"dims, J_g: {pr['dim_J_g']} dims). Models of other widths with exactly the same "
            "next-token distribution were sampled (THEORY.md 4: f~ = T[A e_f; u; 0], "
            "g~ = T^-T[A^-T e_g; 0; w; 0] + c with random T, A, c and junk u, w; the last one "
            "with adversarial junk) and checked with equivalence(); ranks of every model are "
            f"decided with the original's relative tolerance {fmt(pr.get('rank_tol'))} "
            "(their spectra of L are identical).",
        ),
    ]
    stats = list(demo["stat_identified"])
    cols = ["width", "equivalent", "max_logodds_gap", "mean_kl", "residual_f", "residual_g"]
    rows = [
        [m["label"], m["junk"]] + [m.get(c) for c in cols] + [m["stats"].get(s) for s in stats]
        for m in demo["models"]
    ]
    ex = {c: _ex(c) for c in cols} | {"width": Explanation("width d~ of the sampled model", None)}
    for s in stats:
        ex[s] = _ex(s, bool(demo["stat_identified"][s]))
    out.append(Block("table", Table(["model", "junk"] + cols + stats, rows, ex)))
    if "equivalence" in figures:
        out.append(Block("figure", figures["equivalence"], "Raw statistics move, identified stay."))
    return out


# ---------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1150px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #1b9e77;padding-bottom:.2em}
h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
td.t{text-align:left;white-space:normal}
.id{color:#1b9e77;font-weight:600}.raw{color:#d95f02;font-weight:600}.fact{color:#777}
.note{background:#f6faf8;border-left:4px solid #1b9e77;padding:.6em 1em}
dl.cols{font-size:12px;color:#444;margin:.2em 0 1em}dl.cols dt{display:inline;font-weight:600}
dl.cols dd{display:inline;margin:0}dl.cols dd:after{content:"";display:block}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:12px;color:#555}
"""

_SCRIPT = """
window.addEventListener('load',function(){var im=document.images,ok=im.length>0;
for(var i=0;i<im.length;i++){if(!(im[i].complete&&im[i].naturalWidth>0))ok=false;}
document.body.setAttribute('data-images-ok',ok?'yes':'no');
document.body.setAttribute('data-images',String(im.length));});
"""


def _mark_html(identified: bool | None) -> str:
    cls = {True: "id", False: "raw", None: "fact"}[identified]
    return f'<span class="{cls}">{mark(identified)}</span>'


def render_html(blocks: list[Block], folder: Path, title: str) -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for bl in blocks:
        if bl.kind in ("h1", "h2", "h3"):
            parts.append(f"<{bl.kind}>{html.escape(bl.content)}</{bl.kind}>")
        elif bl.kind == "p":
            parts.append(f"<p>{html.escape(bl.content)}</p>")
        elif bl.kind == "note":
            parts.append(f"<p class='note'>{bl.content}</p>")
        elif bl.kind == "figure":
            data = base64.b64encode((folder / bl.content).read_bytes()).decode()
            parts.append(
                f"<figure><img alt='{html.escape(bl.caption)}' "
                f"src='data:image/png;base64,{data}'><figcaption>{html.escape(bl.caption)} "
                f"(figures/{html.escape(bl.content)})</figcaption></figure>"
            )
        elif bl.kind == "table":
            parts.append(_html_table(bl.content))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _html_table(t: Table) -> str:
    out = ["<table><thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in t.headers]
    out.append("</tr></thead><tbody>")
    for r in t.rows:
        cells = []
        for c in r:
            if isinstance(c, str) and c in ("identified", "NOT identified", "fact"):
                ident = {"identified": True, "NOT identified": False, "fact": None}[c]
                cells.append(f"<td class='t'>{_mark_html(ident)}</td>")
            elif isinstance(c, str):
                cells.append(f"<td class='t'>{html.escape(c)}</td>")
            else:
                cells.append(f"<td>{html.escape(fmt(c))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if t.columns:
        out.append("<dl class='cols'>")
        for k, e in t.columns.items():
            text = html.escape(e.text)
            out.append(f"<dt>{html.escape(k)}</dt><dd>: {text} ({_mark_html(e.identified)})</dd>")
        out.append("</dl>")
    return "".join(out)


# ---------------------------------------------------------------------------- Markdown
def render_md(blocks: list[Block]) -> str:
    lines: list[str] = []
    for bl in blocks:
        if bl.kind == "h1":
            lines += [f"# {bl.content}", ""]
        elif bl.kind == "h2":
            lines += [f"## {bl.content}", ""]
        elif bl.kind == "h3":
            lines += [f"### {bl.content}", ""]
        elif bl.kind in ("p", "note"):
            lines += [bl.content.replace("<b>", "**").replace("</b>", "**"), ""]
        elif bl.kind == "figure":
            lines += [f"![{bl.caption}](figures/{bl.content})", ""]
        elif bl.kind == "table":
            t: Table = bl.content
            lines.append("| " + " | ".join(t.headers) + " |")
            lines.append("|" + "---|" * len(t.headers))
            for r in t.rows:
                lines.append("| " + " | ".join(fmt(c).replace("|", "\\|") for c in r) + " |")
            lines.append("")
            for k, e in t.columns.items():
                lines.append(f"- `{k}`: {e.text} ({mark(e.identified)})")
            if t.columns:
                lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- all outputs
def write_report(res: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write every output into ``folder`` (which must exist); returns name -> relative path."""
    figdir = folder / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    figures = write_figures(res, figdir)
    res = dict(res)
    res["figures"] = {k: f"figures/{v}" for k, v in figures.items()}
    blocks = build_blocks(res, figures)
    title = f"allornone audit: {res['model']['name']}"
    (folder / "report.html").write_text(render_html(blocks, figdir, title), encoding="utf-8")
    (folder / "report.md").write_text(render_md(blocks), encoding="utf-8")
    (folder / "results.json").write_text(json.dumps(res, indent=1, allow_nan=False), "utf-8")
    return {"html": "report.html", "md": "report.md", "json": "results.json", **res["figures"]}


# ---------------------------------------------------------------------------- terminal
_HEADLINE = {
    "parallelism": "logodds_corr",
    "relational": "dist_faithfulness",
    "probing": "logodds_test_accuracy",
    "steering": "target_shift",
}


def summary_table(res: dict[str, Any]) -> str:
    """Plain aligned text: the headline numbers of the audit."""
    rows: list[tuple[str, str, str]] = [("item", "value", "identified?")]
    m, st = res["model"], res["structure"]
    rows += [
        ("model", f"{m['name']} (d={m['d']}, V={m['V']})", "fact"),
        ("logit check", fmt(m.get("logit_check")), "fact"),
        ("k / energy rank", f"{st['k']} / {st['energy_rank']} (n={st['n']})", "identified"),
        ("dim M / dim N", f"{st['dim_M']} / {st['dim_N']}", "NOT identified"),
    ]
    for r in res.get("restricted", [])[:4]:
        rows.append((f"k on {r['name']}", f"{r['k']} (d={r['d']}, V={r['V']})", "identified"))
    for p in res.get("properties", []):
        key = _HEADLINE.get(p["property"])
        if key not in p["identified"]:
            key = next(iter(p["identified"]), None)
        main = (key, p["identified"].get(key)) if key else (None, None)
        val = f"{main[0]}={fmt(main[1])}" if main[0] else "-"
        verdict = "all-or-none" if p["all_or_none"] else "NOT all-or-none"
        rows.append((f"{p['property']}: {p['name']}"[:48], f"{val}; {verdict}", "identified"))
    demo = res.get("equivalence_demo")
    if demo:
        ok = sum(bool(x["equivalent"]) for x in demo["models"][1:])
        rows.append(
            ("equivalent samples", f"{ok}/{len(demo['models']) - 1} equivalent", "identified")
        )
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)
