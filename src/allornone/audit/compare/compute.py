"""``allornone compare``, the computation: two models on the same contexts and shared tokens.

Shared tokens: token ids whose **decoded labels** (:attr:`LanguageModel.tokens`) are
identical in both vocabularies. Labels are the text a token adds after other text, so the
leading-space marker is already normalised: GPT-2 byte-level BPE ``"Ġcat"`` and SentencePiece
``"▁cat"`` both read ``" cat"``. Special tokens, fallback labels (raw pieces kept because the
decoded text collided, ``"piece#id"``) and ``"<unused:...>"`` rows are never shared. Both
models are restricted to the shared tokens right after loading (their softmax is
renormalised on that set), which also keeps memory low for big vocabularies.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ... import __version__
from ..._io import to_jsonable
from ..._validation import AllOrNoneError
from ...calibration import calibrate, logratio_agreement, map_similarity
from ...distances import distances, logit_distances, paper_d_llv
from ...equivalence import REPORT_ROWS, equivalence
from ...linalg import memoized_r_factors
from ...predictor import NextTokenPredictor
from ...registry import property_spec, registered_names
from ...structure import leading_rank, structure
from .. import builtin  # noqa: F401 - registers the built-in steps
from ..inputs import FLOAT32_FLOOR, AuditConfig, ContextSets, load_inputs, select_subjects
from ..step import Geometry, StepInputs, audit_steps
from ..steps import Steps

_FALLBACK = re.compile(r"#\d+$")


@dataclass
class CompareConfig:
    model_a: str
    model_b: str
    labels: str | None = None
    relations: str | None = None
    device: str | None = None
    dtype: str | None = None
    device_map: str | None = None
    batch_size: int | None = None
    seed: int = 0
    quick: bool = False
    progress: bool = True


class SharedModel:
    """One model seen on the shared tokens: ``word_tokens`` answers in shared-index space."""

    def __init__(self, lm: Any, ids: np.ndarray, labels: list[str]) -> None:
        self.lm, self.ids, self.tokens = lm, ids, labels
        self.name, self.d, self.V = str(getattr(lm, "name", "model")), int(lm.d), len(ids)
        self._pos = {int(t): i for i, t in enumerate(ids)}

    def word_tokens(self, words: list[str]) -> Any:
        rep = self.lm.word_tokens(list(words))
        single = {w: self._pos[i] for w, i in rep.single.items() if i in self._pos}
        return type("WT", (), {"single": single})()


def shared_tokens(lm_a: Any, lm_b: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Ids in A, ids in B and labels of the tokens whose labels are identical in both."""

    def usable(lm: Any) -> dict[str, int]:
        specials = set(getattr(getattr(lm, "tokenizer", None), "all_special_tokens", []) or [])
        out = {}
        for i, t in enumerate(lm.tokens):
            if t in specials or t.startswith("<unused:") or _FALLBACK.search(t) or not t:
                continue
            out[t] = i
        return out

    ua, ub = usable(lm_a), usable(lm_b)
    labels = sorted(set(ua) & set(ub))
    if len(labels) < 2:
        raise AllOrNoneError(
            f"{lm_a.name} and {lm_b.name} share {len(labels)} token strings: nothing to compare"
        )
    return (
        np.array([ua[t] for t in labels]),
        np.array([ub[t] for t in labels]),
        labels,
    )


def _load(name: str, cfg: CompareConfig) -> Any:
    return props_load(
        AuditConfig(
            model=name,
            device=cfg.device,
            dtype=cfg.dtype,
            device_map=cfg.device_map,
            batch_size=cfg.batch_size,
        )
    )


def props_load(cfg: AuditConfig) -> Any:
    from .. import pipeline  # looked up at call time (tests replace pipeline.load_model)

    return pipeline.load_model(cfg)


def run_compare(cfg: CompareConfig, models: tuple[Any, Any] | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    names = [
        "load data",
        "load models",
        "shared tokens",
        "embed contexts",
        "structure",
        "distance",
        "map",
        "similarity",
        "properties",
    ]
    with memoized_r_factors(), Steps(names, cfg.progress) as steps:
        return _compare(cfg, models, steps, t0)


def _compare(cfg: CompareConfig, models: Any, steps: Steps, t0: float) -> dict[str, Any]:
    # the user's files are read and checked before any model loads; the relations keep the
    # size compare always had (3 relations, up to 48 subjects each: two models embed them)
    acfg = AuditConfig(
        labels=cfg.labels,
        relations=cfg.relations,
        seed=cfg.seed,
        quick=cfg.quick,
        progress=cfg.progress,
        n_subjects=48,
        n_relations=3,
    ).sized()
    inp = steps.run("load data", lambda: load_inputs(acfg))
    lm_a, lm_b = steps.run(
        "load models",
        lambda: (
            models if models is not None else (_load(cfg.model_a, cfg), _load(cfg.model_b, cfg))
        ),
    )
    ia, ib, labels = steps.run("shared tokens", lambda: shared_tokens(lm_a, lm_b))
    sa, sb = SharedModel(lm_a, ia, labels), SharedModel(lm_b, ib, labels)
    select_subjects(sa, inp, acfg)  # objects single tokens in A and shared
    ctx = ContextSets.build(inp)

    def embed_both() -> tuple[NextTokenPredictor, NextTokenPredictor]:
        out = []
        for lm, ids in ((lm_a, ia), (lm_b, ib)):
            F = np.asarray(lm.embed(ctx.all, progress=cfg.progress), dtype=np.float64)
            G = np.asarray(lm.unembedding())[ids]
            # float64 rows of a float32 model: tolerances at float32 precision
            out.append(NextTokenPredictor(F, G, tokens=labels, eps=FLOAT32_FLOOR))
        return out[0], out[1]

    Pa, Pb = steps.run("embed contexts", embed_both)
    main = ctx.rows("main")
    Ma, Mb = Pa.subset(rows=main), Pb.subset(rows=main)
    sta, stb = steps.run("structure", lambda: (structure(Ma), structure(Mb)))
    eq = steps.run(
        "distance", lambda: equivalence(Ma, Mb, structures=(sta, stb), max_rows=REPORT_ROWS)
    )
    mp = steps.run("map", lambda: map_residuals(sta, stb, cfg.seed))
    res: dict[str, Any] = {
        "schema_version": "1.1",
        "kind": "compare",
        "tool": {"name": "allornone", "version": __version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": asdict(cfg),
        "models": [_facts(lm_a), _facts(lm_b)],
        "shared_tokens": {
            "count": len(labels),
            "fraction_a": len(labels) / lm_a.V,
            "fraction_b": len(labels) / lm_b.V,
            "examples": labels[1000:1010],
            "rule": "identical decoded labels (leading space normalised to ' '); "
            "special, fallback and unused tokens excluded",
        },
        "contexts": {"n": len(ctx.all), "main": len(main)},
        "structure": [_st(sta), _st(stb)],
        "distance": {
            "mean_kl": eq.mean_kl,
            "max_logodds_gap": eq.max_logodds_gap,
            "rel_logodds_gap": eq.rel_logodds_gap,
            "rows_evaluated": eq.rows_evaluated,
            "equivalent": eq.equivalent,
        },
        "map": mp | {"recovered": recovered_map(eq)},
    }
    res["similarity"] = steps.run(
        "similarity", lambda: similarity(Ma, Mb, sta, stb, sa, inp.families, cfg.seed)
    )
    res["properties"] = steps.run(
        "properties", lambda: compare_properties(sa, sb, Pa, Pb, ctx, inp, sta, stb, cfg)
    )
    res["timings_s"] = steps.timings
    res["runtime_s"] = round(time.perf_counter() - t0, 2)
    return to_jsonable(res)


def _facts(lm: Any) -> dict[str, Any]:
    return {
        "name": str(lm.name),
        "d": int(lm.d),
        "V": int(lm.V),
        "logit_check": getattr(lm, "logit_check", None),
    }


def _st(st: Any) -> dict[str, Any]:
    out = {k: st.summary()[k] for k in ("n", "V", "d", "k", "energy_rank", "dim_M", "dim_N")}
    out["singular_values"] = st.singular_values.tolist()
    return out


def map_residuals(sta: Any, stb: Any, seed: int) -> dict[str, Any]:
    """Best linear maps between the effective representations, both ways, held out.

    Coordinates: the leading ``r = min(energy ranks)`` context coordinates of each model
    (:meth:`Structure.leading_f`, ``F E'[:, :r]``: they span the top ``r`` left singular
    vectors of L, which the distribution determines, so equivalent models map exactly), ``r``
    at most a third of the training contexts. The maps are fitted by least squares (with an
    offset) on 70% of the contexts and evaluated on the other 30%.
    """
    n = sta.e_f.shape[0]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    tr, te = perm[: int(0.7 * n)], perm[int(0.7 * n) :]
    # at most a third of the training contexts as inputs, so the map cannot interpolate
    r = leading_rank(sta, stb, n)
    ea, eb = sta.leading_f(r), stb.leading_f(r)

    def fit(X: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
        X1 = np.hstack([X, np.ones((n, 1))])
        W, *_ = np.linalg.lstsq(X1[tr], Y[tr], rcond=None)
        res_tr = np.linalg.norm(X1[tr] @ W - Y[tr]) / np.linalg.norm(Y[tr] - Y[tr].mean(0))
        res_te = np.linalg.norm(X1[te] @ W - Y[te]) / np.linalg.norm(Y[te] - Y[te].mean(0))
        return float(res_tr), float(res_te)

    ab, ba = fit(ea, eb), fit(eb, ea)
    return {
        "r": r,
        "n_train": len(tr),
        "n_test": len(te),
        "map_residual_ab": ab[1],
        "map_residual_ba": ba[1],
        "map_residual_ab_train": ab[0],
        "map_residual_ba_train": ba[0],
    }


def recovered_map(eq: Any) -> dict[str, Any]:
    """The map :func:`~allornone.equivalence` recovers between the two models (THEORY.md 4).

    ``A`` (k_b x k_a) takes ``e_f^a`` to ``e_f^b``; its residuals on both sides certify it. The
    ambient map ``B = U_b A U_a^T`` (d_b x d_a) is summarised by its singular values and,
    when square, by its diagonal and the share of its norm off the diagonal (a
    reparametrisation ``f -> D f`` by a diagonal ``D`` gives ``diag(B) = D`` and share 0).
    """
    B = eq.B
    out: dict[str, Any] = {
        "k_a": eq.k_a,
        "k_b": eq.k_b,
        "residual_f": eq.residual_f,
        "residual_g": eq.residual_g,
        "residual_f_reverse": eq.residual_f_reverse,
        "cond_A": eq.cond_A,
        "singular_values": np.linalg.svd(eq.A, compute_uv=False).tolist(),
        "ambient_shape": list(B.shape),
        "diagonal": None,
        "off_diagonal_share": None,
    }
    if B.shape[0] == B.shape[1]:
        diag = np.diag(B)
        tot = float(np.linalg.norm(B))
        out["diagonal"] = diag.tolist()
        off = float(np.sqrt(max(tot**2 - float(diag @ diag), 0.0)))
        out["off_diagonal_share"] = off / tot if tot > 0 else 0.0
    return out


#: Pivots, and label sets per pivot, of d_rep in the compare report (one d x d solve each).
COMPARE_REP_PIVOTS = 4

#: Shuffled copies for the calibrated statistics of the compare report.
COMPARE_PERMUTATIONS = 99


def similarity(
    Ma: NextTokenPredictor,
    Mb: NextTokenPredictor,
    sta: Any,
    stb: Any,
    shared: SharedModel,
    families: list[Any],
    seed: int,
) -> dict[str, Any]:
    """d_LLV and d_{f,g} (THEORY.md 10.1-10.2) and calibrated cross-model statistics
    (THEORY.md 10.3): the map similarity of the leading effective coordinates (those of
    :func:`map_residuals`) and the log-ratio agreement of each pair family."""
    dist = distances(Ma, Mb, seed=seed)
    r = leading_rank(sta, stb, Ma.n)
    cal = calibrate(
        lambda x, y: map_similarity(x, y, seed=seed),
        sta.leading_f(r),
        stb.leading_f(r),
        permutations=COMPARE_PERMUTATIONS,
        seed=seed,
        name="map_similarity",
    )
    fams = []
    for fam in families:
        words = sorted({w for p in fam.pairs for w in p})
        ids = shared.word_tokens(words).single
        pairs = [(ids[x], ids[y]) for x, y in fam.pairs if x in ids and y in ids]
        if len(pairs) < 2:
            continue
        ia, ib = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        la = Ma.F @ (Ma.G[ib] - Ma.G[ia]).T
        lb = Mb.F @ (Mb.G[ib] - Mb.G[ia]).T
        c = calibrate(
            logratio_agreement,
            la,
            lb,
            permutations=COMPARE_PERMUTATIONS,
            seed=seed,
            name=fam.name,
        )
        fams.append({"name": fam.name, "n_pairs": len(pairs), **c.summary()})
    keep = ("d_llv", "d_fg", "d_f", "d_g", "bound", "paper_bound", "mean_kl", "dim", "draws")
    paper = paper_d_llv(Ma, Mb, seed=seed).summary()
    logit = logit_distances(
        Ma, Mb, n_pivots=COMPARE_REP_PIVOTS, combinations=COMPARE_REP_PIVOTS, seed=seed
    ).summary()
    paper_keep = [k for k in paper if k not in ("n", "V", "d_a", "d_b")]
    return {
        "distances": {k: dist.summary()[k] for k in keep}
        | {"paper_d_llv": {k: paper[k] for k in paper_keep}}
        | {"logit": {k: v for k, v in logit.items() if k not in ("n", "V", "d_a", "d_b")}},
        "map_similarity": {"r": r, **cal.summary()},
        "logratio_agreement": fams,
        "permutations": COMPARE_PERMUTATIONS,
    }


def compare_properties(
    sa: SharedModel,
    sb: SharedModel,
    Pa: NextTokenPredictor,
    Pb: NextTokenPredictor,
    ctx: ContextSets,
    inp: Any,
    sta: Any,
    stb: Any,
    cfg: CompareConfig,
) -> list[dict[str, Any]]:
    main = ctx.rows("main")
    out: dict[str, list[Any]] = {}
    for side, sm, P, st in (("a", sa, Pa, sta), ("b", sb, Pb, stb)):
        view = StepInputs(
            lm=sm,
            P=P,
            ctx=ctx,
            inputs=inp,
            geo=Geometry.build(P.subset(rows=main), st),
            seed=cfg.seed,
            purpose="compare",
            relations=tuple(inp.relations),
        )
        out[side] = [r for step in audit_steps(purpose="compare") for r in step.run(view)]
    rows = []
    bmap = {(r.property, r.name): r for r in out["b"]}
    for ra in out["a"]:
        rb = bmap.get((ra.property, ra.name))
        if rb is None:
            continue
        key = _headline(ra)
        va, vb = ra.identified.get(key), rb.identified.get(key)
        rows.append(
            {
                "property": ra.property,
                "name": ra.name,
                "statistic": key,
                "a": va,
                "b": vb,
                "difference": None if va is None or vb is None else float(vb - va),
                "verdict_a": bool(ra.all_or_none),
                "verdict_b": bool(rb.all_or_none),
                "verdicts_agree": bool(ra.all_or_none) == bool(rb.all_or_none),
            }
        )
    return rows


def _headline(r: Any) -> str:
    """The identified statistic compared: the property's declared headline (else its first
    identified statistic)."""
    key = property_spec(r.property).headline if r.property in registered_names() else ""
    return key if key in r.identified else next(iter(r.identified), "")
