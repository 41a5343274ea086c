"""The study's report, in the audit's format: report.html, report.md, results.json, figures."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from .._io import atomic_write_text, to_jsonable
from ..properties.parallelism import SPEC as _PARALLELISM_SPEC
from ..report import Block, Explanation, Table, pyplot, save_figure, write_pages

_X = {
    "mean_kl": Explanation("mean KL(p_a || p_b) over held-out contexts, nats", None),
    "max_logodds_gap": Explanation("largest |L_a - L_b| over those contexts and all tokens", None),
    "k": Explanation("effective complexity (numerical rank of the log-odds)", True),
    "residual_f": Explanation("relative residual of the best map e_f^b ~ A e_f^a", None),
    "residual_f_reverse": Explanation("the same map fitted the other way (b to a)", None),
    "residual_g": Explanation(
        "relative residual of e_g^b ~ A^{-T} e_g^a with the f-side A (0 if equivalent)", None
    ),
    "raw": Explanation("mean Euclidean cosine of unembedding differences", False),
    "identified": Explanation("mean log-odds correlation of the pairs' log-ratios", True),
    "ratio": Explanation(
        "std across seeds of raw / std of identified (>1: identified steadier)", None
    ),
    "probe": Explanation("accuracy on b of the book probe carried from a through the map", None),
    "steer": Explanation(
        "correlation over tokens of the two models' own steering shifts G0 v (identified "
        "in each model)",
        True,
    ),
    "steer_map": Explanation(
        "correlation over tokens of b's shift for a's vector carried by the map B and b's own",
        None,
    ),
}


def _fig_stability(res: dict[str, Any], path: Path) -> bool:
    plt = pyplot()
    rows = res.get("stability", [])
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=110)
    widths = sorted({r["width"] for r in rows})
    for w, marker in zip(widths, "os^D"):
        sel = [r for r in rows if r["width"] == w]
        ax.scatter(
            [r["identified_std"] for r in sel],
            [r["raw_std"] for r in sel],
            marker=marker,
            label=f"d={w}",
        )
    lim = max(max(r["raw_std"] for r in rows), max(r["identified_std"] for r in rows)) * 1.1
    ax.plot([0, lim], [0, lim], color="grey", ls="--", lw=1)
    ax.set_xlabel("std across seeds: identified (log-odds corr.)")
    ax.set_ylabel("std across seeds: raw (Euclidean cos.)")
    ax.set_title("Parallelism per concept family: spread across seeds")
    ax.legend()
    save_figure(fig, path)
    return True


def _fig_curves(res: dict[str, Any], family: Path, path: Path) -> bool:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=110)
    any_curve = False
    members = res["members"]
    by_width = len(members) > 8  # many seeds: one colour and one legend entry per width
    widths = sorted({m.get("width") for m in members}, key=lambda w: (w is None, w))
    labelled: set = set()
    for m in members:
        curve_path = family / m["name"] / "curve.json"
        if not curve_path.exists():
            continue
        curve = json.loads(curve_path.read_text())
        opts: dict[str, Any] = {"label": m["name"]}
        if by_width:
            w = m.get("width")
            n = sum(1 for x in members if x.get("width") == w)
            opts = {"color": f"C{widths.index(w) % 10}", "lw": 1, "alpha": 0.8}
            if w not in labelled:
                opts["label"] = f"d={w} ({n} seeds)"
                labelled.add(w)
        ax.plot(
            [c["step"] for c in curve],
            [math.exp(c["heldout_loss"]) for c in curve],
            **opts,
        )
        any_curve = True
    ax.axhline(res["bigram_heldout_ppl"], color="grey", ls="--", label="bigram")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("held-out perplexity")
    ax.legend(fontsize=7)
    save_figure(fig, path)
    return any_curve


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], explain: dict) -> Block:
    """A table block: ``columns`` are (header, key in each row) pairs."""
    return Block(
        "table",
        Table([h for h, _ in columns], [[r.get(k) for _, k in columns] for r in rows], explain),
    )


_PAIR_COLS = [
    ("a", "a"),
    ("b", "b"),
    ("mean_kl", "mean_kl"),
    ("max_logodds_gap", "max_logodds_gap"),
    ("k_a", "k_a"),
    ("k_b", "k_b"),
    ("residual_f", "residual_f"),
    ("residual_f_reverse", "residual_f_reverse"),
    ("residual_g", "residual_g"),
    ("d_LLV", "d_llv"),
    ("d_fg", "d_fg"),
    ("d_LLV (paper's est.)", "d_llv_paper"),
    ("d_logit", "d_logit"),
    ("d_rep", "d_rep"),
    ("map sim. calibrated", "map_similarity_calibrated"),
    ("map sim. p", "map_similarity_p"),
]
_PAIR_X = {
    k: _X[k]
    for k in ("mean_kl", "max_logodds_gap", "residual_f", "residual_f_reverse", "residual_g")
}
_PAIR_X |= {
    "d_LLV": Explanation(
        "log-likelihood-variance distance of the two distributions (THEORY.md 10.1)", True
    ),
    "d_fg": Explanation(
        "PLS-SVD dissimilarity of the two representations, 0 to 1 (THEORY.md 10.2)", None
    ),
    "d_LLV (paper's est.)": Explanation(
        "d_LLV by the estimator of the paper's code: one label left out, one input set, "
        "pivots chosen to make the terms small (THEORY.md 10.1)",
        True,
    ),
    "d_logit": Explanation(
        "root mean squared distance of the centred logit vectors (arXiv 2602.15438, "
        "THEORY.md 10.5)",
        True,
    ),
    "d_rep": Explanation(
        "root mean ||f_a - A f_b||^2 with A read from the log-odds of drawn labels, in a's "
        "coordinates (THEORY.md 10.5)",
        False,
    ),
    "map sim. calibrated": Explanation(
        "held-out map similarity calibrated by its shuffled-contexts null (arXiv 2602.14486): "
        "clamp((raw - tau) / (1 - tau), 0, 1), tau the 95 % critical value",
        None,
    ),
    "map sim. p": Explanation("permutation p-value of the map similarity", None),
}
# the per-group summary of the pair table: (column, key)
_GROUP_STATS = [
    ("KL", "mean_kl"),
    ("d_LLV", "d_llv"),
    ("d_fg", "d_fg"),
    ("d_LLV paper", "d_llv_paper"),
    ("d_logit", "d_logit"),
    ("residual_f", "residual_f"),
    ("map sim. calibrated", "map_similarity_calibrated"),
]


def _pair_groups(
    pairs: list[dict[str, Any]], members: list[dict[str, Any]]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The pairs by group, ordered by width: one width (seed vs seed), or two widths with the
    same or other seeds; (label, rows) per group."""
    widths = {m["name"]: m.get("width") for m in members}
    seeds = {m["name"]: m.get("seed") for m in members}
    groups: dict[tuple, tuple[str, list[dict[str, Any]]]] = {}
    for row in pairs:
        wa, wb = widths.get(row["a"]), widths.get(row["b"])
        lo, hi = sorted((wa, wb), key=lambda w: (w is None, w or 0))
        if wa == wb:
            key, label = (lo is None, lo or 0, 0, 0), f"d = {lo}, seed vs seed"
        else:
            same = seeds.get(row["a"]) == seeds.get(row["b"])
            key = (lo is None, lo or 0, hi or 0, 0 if same else 1)
            label = f"d = {lo} vs {hi}, {'same seed' if same else 'other seeds'}"
        groups.setdefault(key, (label, []))[1].append(row)
    return [groups[k] for k in sorted(groups)]


def distance_groups(pairs: list[dict[str, Any]], members: list[dict[str, Any]]) -> list[dict]:
    """The pair table summarised per group of pairs (one width; two widths, same or other
    seed): the number of pairs and the median, minimum and maximum of each distance."""
    out = []
    for name, rows in _pair_groups(pairs, members):
        summary: dict[str, Any] = {"pairs": name, "n": len(rows)}
        for _, key in _GROUP_STATS:
            vals = [
                float(r[key])
                for r in rows
                if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
            ]
            summary[key] = (
                f"{statistics.median(vals):.3g} ({min(vals):.3g}–{max(vals):.3g})" if vals else None
            )
        out.append(summary)
    return out


def _group_table(pairs: list[dict[str, Any]], members: list[dict[str, Any]]) -> Block:
    cols = [("pairs", "pairs"), ("n", "n")] + [
        (f"{label}: median (min–max)", key) for label, key in _GROUP_STATS
    ]
    return _table(distance_groups(pairs, members), cols, {})


def _fig_distances(res: dict[str, Any], path: Path) -> bool:
    """KL against d_LLV for every pair, one panel per model kind, one colour per group."""
    panels = [("transformers", res.get("pairs") or [], res["members"])]
    w2v = res.get("word2vec") or {}
    if w2v.get("pairs"):
        panels.append(("word2vec", w2v["pairs"], _w2v_members(w2v)))
    panels = [p for p in panels if p[1]]
    if not panels:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.0), dpi=110)
    axes = [axes] if len(panels) == 1 else list(axes)
    for ax, (title, pairs, members) in zip(axes, panels):
        shown = [r for r in pairs if r.get("d_llv") is not None and (r.get("mean_kl") or 0) > 0]
        for i, (name, rows) in enumerate(_pair_groups(shown, members)):
            ax.scatter(
                [r["mean_kl"] for r in rows],
                [r["d_llv"] for r in rows],
                s=14,
                marker="os^Dv<>p"[i % 8],
                label=f"{name} ({len(rows)})",
                alpha=0.8,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("mean KL(p_a || p_b), nats")
        ax.set_ylabel("d_LLV")
        ax.set_title(f"{title}: how far apart the pairs are")
        ax.legend(fontsize=6)
    save_figure(fig, path)
    return True


#: Key of the parallelism rows in study-results.json (the property's registered name).
PARALLELISM = _PARALLELISM_SPEC.name


def _w2v_members(w2v: dict[str, Any]) -> list[dict[str, Any]]:
    """word2vec members from the parallelism rows (name, width, seed)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in w2v.get(PARALLELISM, []):
        seen.setdefault(r["model"], {"name": r["model"], "width": r["width"], "seed": r["seed"]})
    return list(seen.values())


_STAB_COLS = [
    ("family", "family"),
    ("width", "width"),
    ("seeds", "seeds"),
    ("raw mean", "raw_mean"),
    ("raw std", "raw_std"),
    ("identified mean", "identified_mean"),
    ("identified std", "identified_std"),
    ("ratio", "ratio_raw_to_identified_std"),
    ("ratio CI low", "ratio_ci_low"),
    ("ratio CI high", "ratio_ci_high"),
]
_STAB_X = {
    "raw mean": _X["raw"],
    "identified mean": _X["identified"],
    "ratio": _X["ratio"],
    "ratio CI low": Explanation(
        "95% bootstrap interval over seeds of the ratio (empty with fewer than 3 seeds)", None
    ),
}
_Q_X = {
    "estimate": Explanation(
        "steadier: geometric mean over concept families of std(raw)/std(identified) (null "
        "1); larger: mean of identified - raw (null 0); width: mean of |change of raw| - "
        "|change of identified| from the smallest to the largest width (null 0)",
        None,
    ),
    "CI low": Explanation(
        "95% percentile bootstrap interval resampling seeds and concept families", None
    ),
    "Wilcoxon p": Explanation(
        "exact two-sided signed-rank test of the per-family effects across concept families",
        None,
    ),
    "sign test": Explanation("positive/negative per-family effects, exact two-sided p", None),
    "answer": Explanation("yes/no: the interval excludes the null; else undecided", None),
}


def question_rows(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows of the study's questions for the report's table."""
    rows = []
    for q in questions:
        iv, t = q["interval"], q.get("test") or {}
        where = q["sentence"].split("(", 1)[1].split(")", 1)[0] if "(" in q["sentence"] else ""
        rows.append(
            {
                "question": q["key"].replace("_", " "),
                "where": where,
                "seeds": q["n_seeds"],
                "families": q["n_families"],
                "estimate": iv["estimate"],
                "null": q["null"],
                "ci_low": iv["low"],
                "ci_high": iv["high"],
                "wilcoxon_p": t.get("wilcoxon_p"),
                "sign": (
                    f"{t['sign_positive']}+/{t['sign_negative']}- p={t['sign_p']:.3g}"
                    if t
                    else None
                ),
                "answer": q["answer"],
            }
        )
    return rows


_Q_COLS = [
    ("question", "question"),
    ("where", "where"),
    ("seeds", "seeds"),
    ("families", "families"),
    ("estimate", "estimate"),
    ("null", "null"),
    ("CI low", "ci_low"),
    ("CI high", "ci_high"),
    ("Wilcoxon p", "wilcoxon_p"),
    ("sign test", "sign"),
    ("answer", "answer"),
]


def _question_blocks(questions: list[dict[str, Any]], title: str) -> list[Block]:
    if not questions:
        return []
    out = [Block("h2", title), _table(question_rows(questions), _Q_COLS, _Q_X)]
    out += [Block("p", q["sentence"]) for q in questions]
    return out


def build_blocks(res: dict[str, Any], figures: dict[str, str]) -> list[Block]:
    b: list[Block] = [Block("h1", f"allornone study: {res['family']}")]
    b.append(
        Block(
            "p",
            "Models of one family share the corpus split and the tokenizer and differ in seed "
            "and width. The theory predicts identical identified statistics only for exactly "
            "equal distributions; these models are approximately equal, and the tables say how "
            "close, and whether identified statistics are steadier across seeds than raw ones.",
        )
    )
    b.append(Block("h2", "Models"))
    cols = [("model", "name"), ("width", "width"), ("seed", "seed")]
    cols += [("held-out ppl", "heldout_ppl"), ("k", "k"), ("energy rank", "energy_rank")]
    b.append(_table(res["members"], cols, {"k": _X["k"]}))
    b.append(Block("p", f"Bigram baseline, held-out perplexity: {res['bigram_heldout_ppl']:.1f}."))
    if "curves" in figures:
        b.append(Block("figure", figures["curves"], "Training curves against the bigram baseline"))
    b += _question_blocks(
        res.get("questions", []), "What the data decide: raw against identified (transformers)"
    )
    b.append(Block("h2", "Pairs: distance between distributions and the best linear map"))
    sel = res.get("pairs_selection") or {}
    if sel.get("skipped_cross_width"):
        b.append(
            Block(
                "p",
                f"{sel['measured']} pairs measured: every pair of one width and "
                f"{sel['cross_width_pairs_cap']} randomly chosen pairs of different widths "
                f"({sel['skipped_cross_width']} cross-width pairs left out).",
            )
        )
    b.append(_group_table(res["pairs"], res["members"]))
    if "distances" in figures:
        b.append(Block("figure", figures["distances"], "KL against d_LLV for every pair"))
    b.append(_table(res["pairs"], _PAIR_COLS, _PAIR_X))
    b.append(Block("h2", "Parallelism across seeds: raw against identified"))
    b.append(_table(res.get("stability", []), _STAB_COLS, _STAB_X))
    if "stability" in figures:
        b.append(Block("figure", figures["stability"], "Spread across seeds, raw vs identified"))
    b.append(Block("h2", "Probe and steering vector: carried through the map vs refitted"))
    cols = [("a", "a"), ("b", "b"), ("probe acc. refit on b", "probe_acc_refit_b")]
    cols += [
        ("probe acc. carried a→b", "probe_acc_carried_a_to_b"),
        ("agreement carried/refit", "probe_agreement_carried_vs_refit"),
        ("steer shift corr. mapped/refit", "steer_shift_corr_mapped_vs_refit"),
        ("steer shift corr. a/b", "steer_shift_corr_a_vs_b"),
    ]
    explain = {
        "probe acc. carried a→b": _X["probe"],
        "steer shift corr. mapped/refit": _X["steer_map"],
        "steer shift corr. a/b": _X["steer"],
    }
    b.append(_table(res["transport"], cols, explain))
    w2v = res.get("word2vec")
    if w2v:
        b.append(Block("h2", f"word2vec family (shared vocabulary: {w2v['shared_vocab']} words)"))
        b.append(_group_table(w2v["pairs"], _w2v_members(w2v)))
        b.append(_table(w2v["pairs"], _PAIR_COLS, _PAIR_X))
        b.append(_table(w2v["stability"], _STAB_COLS, _STAB_X))
        b += _question_blocks(w2v.get("questions", []), "What the data decide (word2vec)")
    return b


def write_study_report(res: dict[str, Any], folder: Path, family: Path) -> dict[str, str]:
    figdir = folder / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str] = {}
    if _fig_stability(res, figdir / "stability.png"):
        figures["stability"] = "stability.png"
    if _fig_curves(res, family, figdir / "curves.png"):
        figures["curves"] = "curves.png"
    if _fig_distances(res, figdir / "distances.png"):
        figures["distances"] = "distances.png"
    blocks = build_blocks(res, figures)
    write_pages(blocks, folder, f"allornone study: {family.name}")
    out = dict(res)
    out["schema_version"] = "study-1"
    out["figures"] = {k: f"figures/{v}" for k, v in figures.items()}
    atomic_write_text(folder / "results.json", json.dumps(to_jsonable(out), indent=1))
    return {"html": "report.html", "md": "report.md", "json": "results.json"}
