"""Study a trained family: do models that learn the same distribution share linear properties?

For every pair of models of a family (same tokenizer, same corpus split, different seeds and
widths), on held-out contexts:

- the distance between their next-token distributions (mean KL, max log-odds gap), their
  effective complexities and the best linear map between their effective representations with
  its residuals both ways (:func:`allornone.equivalence`);
- per concept family, the raw parallelism statistic (mean Euclidean cosine of unembedding
  differences: NOT identified) and the identified one (log-odds correlation), and how much
  each varies across seeds;
- a probe (which book a passage comes from) and a steering vector (difference of the books'
  mean representations): carried through the recovered map from model a into model b, against
  the probe / vector refitted on b.

The theory (THEORY.md 4-5) makes a prediction only for exactly equal distributions; a family
of trained models is only approximately equal, which is what this measures.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import AllOrNoneError
from ..equivalence import REPORT_ROWS, Equivalence, equivalence
from ..properties.parallelism import SPEC as _PARALLELISM_SPEC
from ..structure import Structure, leading_rank
from .stats import MIN_SEEDS_FOR_CI, row_ratio_interval, stability_questions
from .train import FAMILY_VERSION

#: Key of the parallelism rows in study-results.json (the property's registered name).
PARALLELISM = _PARALLELISM_SPEC.name


@dataclass
class Member:
    kind: str  # "transformer" | "word2vec"
    name: str
    width: int
    seed: int
    path: Path


def discover(family: str | Path) -> tuple[dict[str, Any], list[Member]]:
    """Read ``family.json`` and list the finished models; refuse mixed or foreign families."""
    family = Path(family)
    meta_path = family / "family.json"
    if not meta_path.exists():
        raise AllOrNoneError(
            f"{family} is not a model family (no family.json): create one with "
            f"`allornone train --out {family}`"
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("family_version") != FAMILY_VERSION:
        raise AllOrNoneError(
            f"{family} has family format version {meta.get('family_version')}, this allornone "
            f"reads version {FAMILY_VERSION}: retrain the family"
        )
    members: list[Member] = []
    for run in sorted(family.iterdir()):
        done = run / "done.json"
        if not run.is_dir() or not done.exists():
            continue
        info = json.loads(done.read_text())
        if info["kind"] == "transformer":
            tok = run / "final" / "tokenizer.json"
            sha = hashlib.sha256(tok.read_bytes()).hexdigest()[:16] if tok.exists() else None
            if sha != meta["tokenizer_sha"]:
                raise AllOrNoneError(
                    f"{run.name} uses a different tokenizer from the family ({sha} vs "
                    f"{meta['tokenizer_sha']}): a family must share one tokenizer; move it out"
                )
            members.append(Member("transformer", run.name, info["width"], info["seed"], run))
        elif info["kind"] == "word2vec":
            members.append(Member("word2vec", run.name, info["width"], info["seed"], run))
    if not members:
        raise AllOrNoneError(f"{family} has no finished models yet: run `allornone train` first")
    return meta, members


def _heldout_windows(family: Path, n: int, length: int) -> list[list[int]]:
    held = np.load(family / "data" / "heldout.npy")
    starts = np.linspace(0, held.size - length - 1, n).astype(int)
    return [held[s : s + length].tolist() for s in starts]


def _concept_pairs(lm: Any, min_pairs: int = 3) -> dict[str, list[tuple[int, int]]]:
    """Analogy families and WordNet antonyms, restricted to single-token words."""
    from ..data import analogy_families, antonym_pairs

    fams = {f.name: f.pairs for f in analogy_families()}
    fams["antonyms-adj"] = antonym_pairs("adj").pairs
    out = {}
    for name, pairs in fams.items():
        words = sorted({w for p in pairs for w in p})
        single = dict(lm.word_tokens(words).single)
        ids = [(single[a], single[b]) for a, b in pairs if a in single and b in single]
        ids = [(a, b) for a, b in ids if a != b]
        if len(ids) >= min_pairs:
            out[name] = ids
    return out


def study(
    family: str | Path,
    *,
    n_contexts: int = 1000,
    context_length: int = 32,
    n_passages: int = 200,
    seed: int = 0,
    progress: bool = True,
    trust_pickle: bool | None = None,
    cross_width_pairs: int | None = None,
    n_boot: int = 2000,
    permutations: int = 99,
) -> dict[str, Any]:
    """Measure every pair of transformers (and of word2vec models) of a family.

    Word2vec models are read from the pickle-free folders ``allornone train`` writes; a
    family from an older version (``model.w2v`` gensim pickles) needs ``trust_pickle=True``
    (None: as :func:`allornone.models.allow_pickle` says; default refused, before any model
    is loaded).

    ``permutations``: shuffled copies of the permutation null of the map similarity
    (99: p-values down to 0.01; the null is most of a pair's cost).

    ``cross_width_pairs``: measure at most this many pairs of models of different widths
    (a seeded random choice; None: all). Pairs of one width are always all measured: the
    seed-to-seed comparisons are the study's subject, and 24 models have 276 pairs.

    Returns a JSON-ready dict with ``members``, ``pairs`` (one row per model pair),
    ``parallelism`` (per family and model), ``stability`` (spread across seeds of raw vs
    identified statistics, with a bootstrap interval over seeds of each ratio),
    ``questions`` (every raw-vs-identified comparison with its interval over seeds and
    concept families, the paired tests and its sentence: :mod:`allornone.family.stats`)
    and ``transport`` (probe and steering, carried vs refitted).
    """
    from tqdm.auto import tqdm

    from .. import models, structure
    from ..data.labels import book_passages
    from ..predictor import NextTokenPredictor
    from ..properties import parallelism, probe, steering, vector_from_contexts

    family = Path(family)
    meta, members = discover(family)
    tfs = [m for m in members if m.kind == "transformer"]
    w2vs = [m for m in members if m.kind == "word2vec"]
    # word2vec models are small: read them first, so an untrusted pickle is refused now
    w2v_models = {m.name: _load_w2v(m, trust_pickle) for m in w2vs}
    windows = _heldout_windows(family, n_contexts, context_length)
    books = book_passages(n_per_class=n_passages // 2, seed=seed)
    book_labels = np.array(books.labels)
    res: dict[str, Any] = {
        "family": str(family),
        "bigram_heldout_ppl": meta["bigram_heldout_ppl"],
        "n_contexts": len(windows),
        "members": [],
        "pairs": [],
        PARALLELISM: [],
        "transport": [],
    }
    P: dict[str, NextTokenPredictor] = {}
    Pb: dict[str, NextTokenPredictor] = {}
    props: dict[str, dict[str, Any]] = {}
    S: dict[str, Structure] = {}  # structures on the held-out windows, computed once per model
    Sb: dict[str, Structure] = {}  # ... and on the book passages
    concepts: dict[str, list[tuple[int, int]]] | None = None
    for m in tqdm(tfs, desc="models", disable=not progress):
        lm = models.load(str(m.path / "final"))
        if not isinstance(lm, models.LanguageModel):
            raise AllOrNoneError(f"{m.path / 'final'} is not a transformers model folder")
        if concepts is None:
            concepts = _concept_pairs(lm)
        G = lm.unembedding()
        P[m.name] = NextTokenPredictor(lm.embed_ids(windows, progress=False), G, tokens=lm.tokens)
        Pb[m.name] = NextTokenPredictor(lm.embed(books.texts, progress=False), G)
        st = S[m.name] = structure(P[m.name])
        Sb[m.name] = structure(Pb[m.name])
        done = json.loads((m.path / "done.json").read_text())
        res["members"].append(
            {
                "name": m.name,
                "kind": m.kind,
                "width": m.width,
                "seed": m.seed,
                "heldout_ppl": done.get("heldout_ppl"),
                "k": st.k,
                "energy_rank": st.energy_rank,
                "logit_check": lm.logit_check,
            }
        )
        par = {
            name: parallelism(P[m.name], pairs, name=name, seed=seed, structure=st)
            for name, pairs in (concepts or {}).items()
        }
        for name, r in par.items():
            res[PARALLELISM].append(
                {
                    "model": m.name,
                    "width": m.width,
                    "seed": m.seed,
                    "family": name,
                    "pairs": len(concepts[name]),
                    "raw_euclid_cos": r.raw.get("euclid_cos"),
                    "identified_logodds_corr": r.identified.get("logodds_corr"),
                    "baseline_logodds_corr": r.baseline.get("logodds_corr"),
                }
            )
        pr = probe(Pb[m.name], book_labels, seed=seed, name="book")
        kjv = np.flatnonzero(book_labels == "kjv")
        aus = np.flatnonzero(book_labels == "austen")
        v = vector_from_contexts(Pb[m.name], kjv, aus)
        sr = steering(Pb[m.name], v, name="kjv-minus-austen", structure=Sb[m.name])
        props[m.name] = {"probe": pr, "steer": sr, "shift": Pb[m.name].G0_matmul(v)}

    pairs, skipped = select_pairs(tfs, cross_width_pairs, seed)
    res["pairs_selection"] = {
        "cross_width_pairs_cap": cross_width_pairs,
        "measured": len(pairs),
        "skipped_cross_width": skipped,
    }
    for a, b in tqdm(pairs, desc="pairs", disable=not progress):
        eq = _pair_distance(P, S, a.name, b.name)
        row = {"a": a.name, "b": b.name, "same_width": a.width == b.width}
        row.update({k: v for k, v in eq.summary().items() if k != "reasons"})
        row.update(_pair_similarity(P, S, a.name, b.name, seed, permutations))
        res["pairs"].append(row)
        eq_b = _pair_distance(Pb, Sb, a.name, b.name)
        res["transport"].append(_transport_row(a, b, eq_b, Pb, props, book_labels))
    res["stability"] = _stability(res[PARALLELISM], n_boot=n_boot, seed=seed)
    res["questions"] = _questions(res[PARALLELISM], "transformer", n_boot, seed)
    res["statistics"] = {
        "n_boot": n_boot,
        "level": 0.95,
        "min_seeds_for_ci": MIN_SEEDS_FOR_CI,
        "method": "percentile bootstrap resampling seeds and concept families with "
        "replacement; exact two-sided Wilcoxon signed-rank and sign tests of the per-family "
        "effects; yes/no when the interval excludes the null, else undecided",
    }
    if any(m.kind == "word2vec" for m in members):
        res["word2vec"] = _study_w2v(
            w2vs,
            w2v_models,
            seed,
            cross_width_pairs=cross_width_pairs,
            n_boot=n_boot,
            permutations=permutations,
        )
    return res


def select_pairs(
    members: list[Member], cross_width_pairs: int | None, seed: int
) -> tuple[list[tuple[Member, Member]], int]:
    """All pairs of one width, and at most ``cross_width_pairs`` pairs of different widths
    (chosen with ``default_rng(seed)``; None: all). Returns the pairs in their combination
    order and how many cross-width pairs were left out."""
    if cross_width_pairs is not None and cross_width_pairs < 0:
        raise AllOrNoneError(f"--cross-width-pairs must be 0 or more, got {cross_width_pairs}")
    pairs = list(itertools.combinations(members, 2))
    cross = [i for i, (a, b) in enumerate(pairs) if a.width != b.width]
    if cross_width_pairs is None or len(cross) <= cross_width_pairs:
        return pairs, 0
    rng = np.random.default_rng(seed)
    keep = set(rng.choice(np.asarray(cross), size=cross_width_pairs, replace=False).tolist())
    chosen = [p for i, p in enumerate(pairs) if pairs[i][0].width == pairs[i][1].width or i in keep]
    return chosen, len(cross) - cross_width_pairs


def _questions(rows: list[dict[str, Any]], kind: str, n_boot: int, seed: int) -> list[dict]:
    return [
        q.to_dict()
        for q in stability_questions(rows, kind=kind, n_boot=n_boot, level=0.95, seed=seed)
    ]


def _pair_distance(preds, structures, a: str, b: str) -> Equivalence:
    """:func:`equivalence` of two members on the shared contexts and tokens, reusing their
    structures; tolerance 1e-2 (trained models are only close: the distances are the answer)."""
    return equivalence(
        preds[a],
        preds[b],
        tol=1e-2,
        structures=(structures[a], structures[b]),
        max_rows=REPORT_ROWS,
    )


def _pair_similarity(
    preds, structures, a: str, b: str, seed: int, permutations: int = 99
) -> dict[str, Any]:
    """d_LLV and d_{f,g} of two members (THEORY.md 10.1-10.2) and the calibrated map
    similarity of their leading effective coordinates (THEORY.md 10.3)."""
    from ..calibration import calibrate, map_similarity
    from ..distances import distances, logit_distances, paper_d_llv

    d = distances(preds[a], preds[b], seed=seed)
    paper = paper_d_llv(preds[a], preds[b], seed=seed)
    d_logit: float | None
    d_rep: float | None
    try:  # d_rep needs unembedding differences spanning R^d_a
        lg = logit_distances(preds[a], preds[b], n_pivots=4, combinations=4, seed=seed)
        d_logit, d_rep = lg.d_logit, lg.d_rep
    except AllOrNoneError:
        d_logit = d_rep = None
    sa, sb = structures[a], structures[b]
    r = leading_rank(sa, sb, preds[a].n)
    c = calibrate(
        lambda x, y: map_similarity(x, y, seed=seed),
        sa.leading_f(r),
        sb.leading_f(r),
        seed=seed,
        name="map_similarity",
        permutations=permutations,
    )
    return {
        "d_llv": d.d_llv,
        "d_fg": d.d_fg,
        "d_fg_bound": d.bound,
        "d_llv_paper": paper.d_llv,
        "d_llv_paper_worst": paper.d_llv_worst,
        "d_logit": d_logit,
        "d_rep": d_rep,
        "map_similarity_raw": c.raw,
        "map_similarity_calibrated": c.calibrated,
        "map_similarity_median_calibrated": c.median_calibrated,
        "map_similarity_p": c.p_value,
    }


def _transport_row(a, b, eq_b, Pb, props, labels) -> dict[str, Any]:
    pa, pb = props[a.name], props[b.name]
    carried = pa["probe"].transport(eq_b)
    scores = carried.scores(Pb[b.name].F) if hasattr(carried, "scores") else None
    own = pb["probe"].details["scores"]
    acc_carried = agree = float("nan")
    if scores is not None:
        classes = pa["probe"].details["classes"]
        pred = np.asarray(classes)[_argmax(scores)]
        acc_carried = float(np.mean(pred == labels))
        agree = float(np.mean(_argmax(scores) == _argmax(own)))
    # The steering witness F~^T alpha of a difference of means is b's own difference of
    # means (it always transfers, THEORY.md 5.4); the informative comparison carries a's
    # vector through the recovered map B.
    shift_t = Pb[b.name].G0_matmul(eq_b.map_f(pa["steer"].details["v"]))
    return {
        "a": a.name,
        "b": b.name,
        "probe_acc_refit_b": pb["probe"].raw.get("test_accuracy"),
        "probe_acc_carried_a_to_b": acc_carried,
        "probe_agreement_carried_vs_refit": agree,
        "steer_shift_corr_mapped_vs_refit": _corr(shift_t, pb["shift"]),
        "steer_shift_corr_a_vs_b": _corr(pa["shift"], pb["shift"]),
        "book_map_residual_f": eq_b.residual_f,
    }


def _argmax(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores)
    return (s > 0).astype(int).reshape(-1) if s.ndim == 1 or s.shape[1] == 1 else s.argmax(1)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x).ravel(), np.asarray(y).ravel()
    return float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")


def _stability(
    rows: list[dict[str, Any]], *, n_boot: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """Spread across seeds (same width) of raw and identified parallelism, per concept family.

    ``ratio`` = std(raw) / std(identified): above 1, the identified statistic is the more
    stable one across seeds; ``ratio_ci_low``/``ratio_ci_high``: its 95% bootstrap interval
    over seeds (None with fewer than 3 seeds).
    """
    out = []
    keys = sorted({(r["family"], r["width"]) for r in rows})
    for fam, width in keys:
        sel = [r for r in rows if r["family"] == fam and r["width"] == width]
        if len(sel) < 2:
            continue
        raw = np.array([r["raw_euclid_cos"] for r in sel], dtype=float)
        ide = np.array([r["identified_logodds_corr"] for r in sel], dtype=float)
        ok = np.isfinite(raw) & np.isfinite(ide)
        iv = row_ratio_interval(raw[ok], ide[ok], n_boot=n_boot, seed=seed)
        out.append(
            {
                "family": fam,
                "width": width,
                "seeds": len(sel),
                "raw_mean": float(raw.mean()),
                "raw_std": float(raw.std(ddof=1)),
                "identified_mean": float(ide.mean()),
                "identified_std": float(ide.std(ddof=1)),
                "ratio_raw_to_identified_std": float(raw.std(ddof=1) / max(ide.std(ddof=1), 1e-12)),
                "ratio_ci_low": iv.low,
                "ratio_ci_high": iv.high,
            }
        )
    return out


def _w2v_path(m: Member) -> Path:
    """The pickle-free folder ``model/`` (written by this version), else a legacy
    ``model/model.w2v`` gensim pickle (read only with ``trust_pickle=True``)."""
    folder = m.path / "model"
    legacy = folder / "model.w2v"
    return legacy if legacy.exists() and not (folder / "word2vec.json").exists() else folder


def _load_w2v(m: Member, trust_pickle: bool | None) -> Any:
    from .. import models

    opts = {} if trust_pickle is None else {"trust_pickle": trust_pickle}
    return models.load(str(_w2v_path(m)), **opts)


def _study_w2v(
    members: list[Member],
    lms: dict[str, Any],
    seed: int,
    *,
    cross_width_pairs: int | None = None,
    n_boot: int = 2000,
    permutations: int = 99,
) -> dict[str, Any]:
    """word2vec family: distances and parallelism stability on the shared vocabulary."""
    from .. import structure
    from ..data import analogy_families
    from ..predictor import NextTokenPredictor
    from ..properties import parallelism

    vocab = None
    for lm in lms.values():
        vocab = set(lm.tokens) if vocab is None else vocab & set(lm.tokens)
    words = sorted(vocab or [])
    rng = np.random.default_rng(seed)
    ctx = sorted(rng.choice(len(words), size=min(1000, len(words)), replace=False).tolist())
    ctx_words = [words[i] for i in ctx]
    preds = {}
    for name, lm in lms.items():
        k2i = {w: i for i, w in enumerate(lm.tokens)}
        G = lm.unembedding()[[k2i[w] for w in words]]
        preds[name] = NextTokenPredictor(lm.embed(ctx_words), G, tokens=words)
    fams = {}
    wi = {w: i for i, w in enumerate(words)}
    for f in analogy_families():
        ids = [
            (wi[a.lower()], wi[b.lower()])
            for a, b in f.pairs
            if a.lower() in wi and b.lower() in wi
        ]
        ids = [(a, b) for a, b in ids if a != b]
        if len(ids) >= 3:
            fams[f.name] = ids
    par = []
    sts = {name: structure(P) for name, P in preds.items()}
    for m in members:
        for fam, ids in fams.items():
            r = parallelism(preds[m.name], ids, name=fam, seed=seed, structure=sts[m.name])
            par.append(
                {
                    "model": m.name,
                    "width": m.width,
                    "seed": m.seed,
                    "family": fam,
                    "raw_euclid_cos": r.raw.get("euclid_cos"),
                    "identified_logodds_corr": r.identified.get("logodds_corr"),
                }
            )
    pairs = []
    chosen, skipped = select_pairs(members, cross_width_pairs, seed)
    for a, b in chosen:
        eq = _pair_distance(preds, sts, a.name, b.name)
        row = {"a": a.name, "b": b.name}
        row.update({k: v for k, v in eq.summary().items() if k != "reasons"})
        row.update(_pair_similarity(preds, sts, a.name, b.name, seed, permutations))
        pairs.append(row)
    return {
        "shared_vocab": len(words),
        "pairs": pairs,
        PARALLELISM: par,
        "stability": _stability(par, n_boot=n_boot, seed=seed),
        "questions": _questions(par, "word2vec", n_boot, seed),
        "skipped_cross_width_pairs": skipped,
    }
