"""``allornone compare``, the report: report.html, report.md, results.json, figures/spectra.png
(rendered with :mod:`allornone.report`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..._io import atomic_write_text
from ...report import (
    Block,
    Explanation,
    Table,
    aligned_text,
    fmt,
    mark,
    pyplot,
    save_figure,
    write_pages,
)
from ..explain import explain


def build_blocks(res: dict[str, Any]) -> list[Block]:
    """The compare report as blocks (from the results of :func:`.compute.run_compare`)."""
    a, b = res["models"]
    bl = [Block("h1", f"allornone compare: {a['name']} vs {b['name']}")]
    bl.append(
        Block(
            "p",
            f"allornone {res['tool']['version']}, schema {res['schema_version']}, "
            f"{res['created']}, run time {fmt(res['runtime_s'])} s.",
        )
    )
    sh = res["shared_tokens"]
    bl.append(
        Block(
            "p",
            f"Shared tokens: {sh['count']} ({fmt(100 * sh['fraction_a'])}% of "
            f"{a['name']}'s, {fmt(100 * sh['fraction_b'])}% of {b['name']}'s "
            f"vocabulary). Rule: {sh['rule']}. Contexts: {res['contexts']['main']}.",
        )
    )
    sa, sb = res["structure"]
    keys = ["d", "V", "k", "energy_rank", "dim_M", "dim_N"]
    bl.append(Block("h2", "Effective complexity on the shared tokens"))
    bl.append(
        Block(
            "table",
            Table(
                ["quantity", a["name"], b["name"], "meaning", "identified?"],
                [[k, sa[k], sb[k], explain(k).text, mark(explain(k).identified)] for k in keys],
            ),
        )
    )
    dist = res["distance"]
    mp = res["map"]
    bl.append(Block("h2", "Distance between the distributions and the best linear map"))
    rows = [
        ["mean_kl", dist["mean_kl"]],
        ["max_logodds_gap", dist["max_logodds_gap"]],
        ["map_residual_ab", mp["map_residual_ab"]],
        ["map_residual_ba", mp["map_residual_ba"]],
    ]
    bl.append(
        Block(
            "table",
            Table(
                ["quantity", "value", "meaning", "identified?"],
                [r + [explain(r[0]).text, mark(explain(r[0]).identified)] for r in rows],
            ),
        )
    )
    bl.append(
        Block(
            "p",
            f"Maps fitted on {mp['n_train']} contexts and evaluated on "
            f"{mp['n_test']} held-out ones, between the leading r = {mp['r']} "
            "context coordinates of each model (F E', spanning the top r left singular "
            "vectors of L; relative residual; 0 = exact map).",
        )
    )
    rec = mp.get("recovered")
    if rec:
        off = rec["off_diagonal_share"]
        bl.append(
            Block(
                "p",
                f"Recovered map (allornone.equivalence, THEORY.md 4): A is {rec['k_b']} x "
                f"{rec['k_a']}, cond {fmt(rec['cond_A'])}; residuals f side "
                f"{fmt(rec['residual_f'])}, g side {fmt(rec['residual_g'])} (0 = the two "
                "models are the same distribution through this map); ambient map "
                f"{rec['ambient_shape'][0]} x {rec['ambient_shape'][1]}"
                + ("." if off is None else f", share of its norm off the diagonal {fmt(off)}."),
            )
        )
    if res.get("similarity"):
        bl.extend(_similarity_blocks(res["similarity"]))
    if res["properties"]:
        bl.append(Block("h2", "Do the properties agree?"))
        cols = ["a", "b", "difference"]
        bl.append(
            Block(
                "table",
                Table(
                    ["property", "name", "statistic", *cols, "verdict a", "verdict b", "agree"],
                    [
                        [
                            p["property"],
                            p["name"],
                            p["statistic"],
                            p["a"],
                            p["b"],
                            p["difference"],
                            p["verdict_a"],
                            p["verdict_b"],
                            p["verdicts_agree"],
                        ]
                        for p in res["properties"]
                    ],
                    {
                        "a": Explanation(f"identified statistic in {a['name']}", True),
                        "b": Explanation(f"identified statistic in {b['name']}", True),
                        "difference": Explanation("b - a", True),
                    },
                ),
            )
        )
    return bl


_SIM = {
    "d_llv": Explanation(
        "log-likelihood variance distance (arXiv 2506.03784; 0 = same distribution)", True
    ),
    "d_fg": Explanation("PLS-SVD dissimilarity of the representations, max of d_f and d_g", True),
    "d_f": Explanation("1 - mean PLS-SVD covariance of log-odds against the pivot token", True),
    "d_g": Explanation("1 - mean PLS-SVD covariance of the unembeddings read by contexts", True),
    "bound": Explanation("2 d_llv^2: upper bound of d_fg (THEORY.md 10.2)", True),
    "mean_kl": Explanation("mean KL(p_a || p_b) over the contexts, nats", True),
}


def _similarity_blocks(sim: dict[str, Any]) -> list[Block]:
    """d_LLV, d_{f,g} beside KL, and the calibrated statistics (THEORY.md 10)."""
    d = sim["distances"]
    out = [Block("h2", "Distances and calibrated similarity")]
    keys = ["mean_kl", "d_llv", "d_fg", "d_f", "d_g", "bound"]
    out.append(
        Block(
            "table",
            Table(
                ["quantity", "value", "meaning", "identified?"],
                [[k, d[k], _SIM[k].text, mark(_SIM[k].identified)] for k in keys],
            ),
        )
    )
    lg = d.get("logit")
    if lg:
        out.append(
            Block(
                "p",
                f"Logit distance (arXiv 2602.15438, THEORY.md 10.5): d_logit = "
                f"{fmt(lg['d_logit'])} (identified); d_rep = {fmt(lg['d_rep'])} in "
                f"the first model's coordinates ({lg['n_pivots']} pivots x "
                f"{lg['combinations']} label sets; not identified), within its bound "
                f"d_rep^2 <= {fmt(lg['bound'])}.",
            )
        )
    pp = d.get("paper_d_llv")
    if pp:
        out.append(
            Block(
                "p",
                "d_llv above takes its terms over every token and context. The paper's "
                f"estimator (THEORY.md 10.1: one label left out, one input set of {pp['dim']} "
                f"contexts, pivots chosen to make the terms small) gives {fmt(pp['d_llv'])} "
                f"(label term {fmt(pp['label_term'])}, input term {fmt(pp['input_term'])}); "
                f"over the {pp['pivots_tried']} pivots and {pp['input_sets_tried']} input sets "
                f"tried the label term ranges {fmt(pp['label_terms_min'])} to "
                f"{fmt(pp['label_terms_max'])}, the input term {fmt(pp['input_terms_min'])} to "
                f"{fmt(pp['input_terms_max'])} (worst {fmt(pp['d_llv_worst'])}).",
            )
        )
    out.append(
        Block(
            "p",
            "A small KL does not make the representations similar (arXiv 2506.03784): d_fg "
            f"compares them through diversity sets of {d['dim']} tokens and contexts "
            f"({d['draws']} draws, the worst kept); 0 means linearly equivalent on those sets. "
            "Calibrated values compare each score with the same score after shuffling which "
            f"context of one model is paired with which of the other ({sim['permutations']} "
            "shuffles) by the formula of arXiv 2602.14486: clamp((raw - tau) / (1 - tau), 0, "
            "1), tau the 95 % critical value of the shuffled scores; 1 = identical, 0 = not "
            "above what 95 % of the shuffles get. The median form (raw - null median) / "
            "(1 - null median), not the paper's, is kept under its own name.",
        )
    )
    rows = []
    m = sim["map_similarity"]
    rows.append(
        [
            f"map similarity (r = {m['r']})",
            m["raw"],
            m["null_median"],
            m["threshold"],
            m["calibrated"],
            m["median_calibrated"],
            m["p_value"],
        ]
    )
    for f in sim["logratio_agreement"]:
        rows.append(
            [
                f"log-ratio agreement: {f['name']} ({f['n_pairs']} pairs)",
                f["raw"],
                f["null_median"],
                f["threshold"],
                f["calibrated"],
                f["median_calibrated"],
                f["p_value"],
            ]
        )
    out.append(
        Block(
            "table",
            Table(
                ["statistic", "raw", "null median", "tau", "calibrated", "median form", "p"],
                rows,
                {
                    "raw": Explanation("the statistic on the paired contexts", True),
                    "tau": Explanation("95 % critical value of raw and the shuffles", True),
                    "calibrated": Explanation(
                        "clamp((raw - tau) / (1 - tau), 0, 1) (arXiv 2602.14486)", True
                    ),
                    "median form": Explanation(
                        "(raw - null median) / (1 - null median), not the paper's", True
                    ),
                    "p": Explanation("share of shuffles at least as good (with the raw)", True),
                },
            ),
        )
    )
    return out


def write_compare(res: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write report.html, report.md, results.json and figures/spectra.png into ``folder``."""
    folder = Path(folder)
    figdir = folder / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(res)
    if _fig(res, figdir / "spectra.png"):
        blocks.insert(3, Block("figure", "spectra.png", "Spectra of L on the shared tokens"))
        res = dict(res) | {"figures": {"spectra": "figures/spectra.png"}}
    write_pages(blocks, folder, blocks[0].content)
    atomic_write_text(folder / "results.json", json.dumps(res, indent=1, allow_nan=False))
    return {"html": "report.html", "md": "report.md", "json": "results.json"}


def _fig(res: dict[str, Any], path: Path) -> bool:
    fig, ax = pyplot().subplots(figsize=(7, 3.6))
    for m, st in zip(res["models"], res["structure"]):
        s = np.array(st["singular_values"], dtype=float)
        if s.size:
            ax.semilogy(
                np.arange(1, s.size + 1),
                s / s[0],
                label=f"{m['name']} (k={st['k']}, energy rank {st['energy_rank']})",
            )
    ax.set_xlabel("index i")
    ax.set_ylabel("sigma_i / sigma_1")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def summary_table(res: dict[str, Any]) -> str:
    """Plain aligned text: the headline numbers of the comparison."""
    a, b = res["models"]
    sa, sb = res["structure"]
    rows = [("item", a["name"], b["name"])]
    rows += [(k, fmt(sa[k]), fmt(sb[k])) for k in ("d", "V", "k", "energy_rank")]
    rows.append(("shared tokens", fmt(res["shared_tokens"]["count"]), ""))
    rows.append(
        (
            "mean KL / max log-odds gap",
            fmt(res["distance"]["mean_kl"]),
            fmt(res["distance"]["max_logodds_gap"]),
        )
    )
    rows.append(
        (
            "map residual a->b / b->a",
            fmt(res["map"]["map_residual_ab"]),
            fmt(res["map"]["map_residual_ba"]),
        )
    )
    rec = res["map"].get("recovered")
    if rec:
        rows.append(
            ("recovered map residual f / g", fmt(rec["residual_f"]), fmt(rec["residual_g"]))
        )
    sim = res.get("similarity")
    if sim:
        rows.append(("d_LLV / d_fg", fmt(sim["distances"]["d_llv"]), fmt(sim["distances"]["d_fg"])))
        ms = sim["map_similarity"]
        rows.append(("map similarity raw / calibrated", fmt(ms["raw"]), fmt(ms["calibrated"])))
    for p in res["properties"]:
        rows.append((f"{p['property']}: {p['name']}"[:40], fmt(p["a"]), fmt(p["b"])))
    return aligned_text(rows)
