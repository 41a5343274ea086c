"""Relational linearity (THEORY.md 5.2): ``f(s + q) ~ A_q f(s) + a_q`` for a relation ``q``.

Data (a :class:`RelationSpec`): subject contexts ``s`` (rows ``subjects`` of one predictor),
the query contexts ``s + q`` (row ``queries[i]`` is subject ``i`` followed by the query
string) and the relation's answer tokens ``Y_q``; ``Gamma = span{g0(y) : y in Y_q}``.

Forms (all fitted on a seeded train split, evaluated on the held-out subjects):

- strong (raw): least squares ``f(s+q) ~ A f(s) + a``; R^2 over all coordinates.
- refined (raw): the same on ``Gamma`` only, ``P_Gamma f(s+q) ~ P_Gamma (A f(s) + a)``, by
  least squares and by the KL probe (minimise ``sum_s KL(p(.|s+q) on Y_q || softmax_{Y_q}
  (G0_Y (A f(s) + a)))``, L-BFGS with a small ridge).
- distribution (identified): ``L[s+q, Y_q] = C_q L[s, :] + beta_q``, fitted through the factors
  (the rows of ``L`` are seen through ``F_S R_G^T`` with ``G0 = Q_G R_G``; ``L`` is never
  formed), min-norm least squares, so the fit depends on the distribution only.

Faithfulness: fraction of held-out subjects where the fitted map's argmax over ``Y_q`` equals
the model's own argmax over ``Y_q`` (and accuracy against the true objects when given). Each
comes with a 95% percentile-bootstrap interval over the held-out subjects
(``details["ci"]``); with fewer than :data:`MIN_HELD_OUT` held-out subjects
``details["decided"]`` is False: the fraction is too noisy to decide anything (one subject
more or less moves it by more than 10 points). With ``objects``, ``details["model_correct"]``
repeats the faithfulness figures on the held-out subjects the model answers correctly (its
argmax over ``Y_q`` is the true object; LRE's filter), with their counts and intervals.

Condition: ``||P_Gamma A_q P_{M_S cap N^perp}|| / ||P_Gamma A_q P_{M_S}||`` with ``M_S`` the
span of the subject representations (not ``M``). Witness: the refined map ``(A_q, a_q)``;
``transport(result, eq)`` returns ``(A~, a~) = (B K A_q J_S B^+, B K a_q)`` with ``J_S`` inverting
``P_N`` on ``P_{M_S}(N)`` and ``B^+ = U A^{-1} U~^T`` (THEORY 5.2). ``K`` maps an output to
the vector of ``E`` that gives the answers the same log-odds; it equals ``P_N`` on outputs
in ``M`` and makes the formula exact for refined maps whose outputs lie in ``Gamma`` (which
may contain unembedding junk ``J_g``). ``eq`` must be an equivalence of a model whose
contexts include the subjects (e.g. the predictor the relation was measured on).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import log_softmax

from .._validation import AllOrNoneError
from ..linalg import orth, r_factor
from ..predictor import NextTokenPredictor, Pivot
from ..registry import PropertySpec, Statistic, register_property
from ..structure import Structure, structure
from ._common import (
    canonical_features,
    check_model,
    default_tol,
    rel,
    resolve_structure,
    resolve_tokens,
    split,
)
from ._result import PropertyResult, keep_spec
from .fitting import affine_lstsq, bootstrap_ci, kl_fit, r2

#: Fewest held-out subjects from which a faithfulness figure is read as a finding.
MIN_HELD_OUT = 10


@dataclass(frozen=True)
class RelationSpec:
    """What :func:`relational` measures: one relation on the contexts of one predictor.

    Attributes
    ----------
    subjects : row selection (indices or labels) of the subject contexts ``s_i``.
    queries : row selection of the query contexts: row ``i`` is ``s_i`` followed by the query.
    answers : the answer tokens ``Y_q`` (labels or indices, at least 2).
    objects : optional, the true answer token of each subject (must be in ``answers``).
    """

    subjects: Any
    queries: Any
    answers: Sequence[Any]
    objects: Sequence[Any] | None = None


@dataclass(frozen=True, eq=False)
class RelationMap:
    """An affine map ``z = A f + a`` on ``R^d`` (A: d x d, a: d)."""

    A: np.ndarray
    a: np.ndarray

    def __call__(self, F: np.ndarray) -> np.ndarray:
        """Apply to rows ``F`` (n x d) -> (n x d)."""
        return np.asarray(F) @ self.A.T + self.a


@dataclass(frozen=True, eq=False)
class RelationWitness:
    """What :func:`~allornone.properties.transport` carries: the refined map and the subject
    geometry.

    Attributes
    ----------
    map : RelationMap
        Refined least-squares map (outputs in ``Gamma``).
    kl_map : RelationMap or None
        The KL-probe map (outputs in ``Gamma``).
    J_S : ndarray (d, d)
        Inverts ``P_N`` on ``P_{M_S}(N)``: ``J_S P_N f(s) = P_{E'_S} f(s)``.
    G0_Y : ndarray (m, d)
        Answer unembeddings (centred or pivoted).
    """

    map: RelationMap
    kl_map: RelationMap | None
    J_S: np.ndarray = field(repr=False)
    G0_Y: np.ndarray = field(repr=False)

    def transport(self, eq: Any, *, which: str = "map") -> RelationMap:
        """``RelationMap(B K A J_S B^+, B K a)`` in model b of ``eq`` (``which="kl_map"``:
        the KL-probe map)."""
        if which not in ("map", "kl_map"):
            raise AllOrNoneError(f"which must be 'map' or 'kl_map', got {which!r}")
        m = self.map if which == "map" else self.kl_map
        if m is None:
            raise AllOrNoneError("no KL map was fitted (kl=False)")
        if eq.A is None:
            raise AllOrNoneError("the equivalence has no map (different k)")
        Ua, Ub = eq.structure_a.E, eq.structure_b.E
        B = eq.B
        B_pinv = Ua @ np.linalg.solve(eq.A, Ub.T)
        K = _to_E(self.G0_Y, Ua)
        return RelationMap(A=B @ K @ m.A @ self.J_S @ B_pinv, a=B @ K @ m.a)

    def carry_spec(
        self, eq: Any, spec: Any, options: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """A relation names subject and query contexts and answer tokens: kept."""
        return keep_spec(spec, options)


def _to_E(G0_Y: np.ndarray, U: np.ndarray) -> np.ndarray:
    """``K = U (G0_Y U)^+ G0_Y`` (d x d): ``G0_Y K z`` = projection of ``G0_Y z`` on col(G0_Y U)."""
    return U @ np.linalg.pinv(G0_Y @ U) @ G0_Y


def _subject_geometry(subjects: NextTokenPredictor, pivot: Pivot):
    """M_S, J_S := basis of M_S cap N^perp, and the operator inverting P_N on P_{M_S}(N)."""
    st = structure(subjects, pivot=pivot)
    Ep = st.E_prime  # P_{M_S}(N), d x k_S
    PN_Ep = st.N @ (st.N.T @ Ep)
    inv_op = Ep @ np.linalg.pinv(PN_Ep)  # d x d
    return st, st.M, st.J_f, inv_op


def relational(
    model: NextTokenPredictor,
    spec: RelationSpec,
    *,
    structure: Structure | None = None,
    pivot: Pivot = "center",
    tol: float | None = None,
    seed: int = 0,
    name: str = "relation",
    test_fraction: float = 0.25,
    kl: bool = True,
    kl_ridge: float = 1e-3,
) -> PropertyResult:
    """Measure relational linearity of one relation.

    Parameters
    ----------
    model : NextTokenPredictor (n x d, V x d)
        A predictor whose contexts include the subjects and the queries.
    spec : RelationSpec
        ``subjects`` (rows ``s_i``), ``queries`` (rows ``s_i + q``, same length), ``answers``
        (the answer set ``Y_q``, at least 2 tokens, e.g. all capital cities' first tokens)
        and optionally ``objects`` (the true answer of each subject, among the answers).
    structure : Structure, optional
        Accepted for the common signature (checked against ``model``); the condition uses
        the structure of the subject rows (``M_S``), computed here.
    seed : seed of the train/test split of the subjects
    test_fraction : float
        Held-out share of subjects (seeded split; at least 1 test and 2 train subjects).
    kl : bool
        Also fit the KL probe (raw).
    kl_ridge : float
        Ridge of the KL probe, relative to the mean variance of the centred subject
        features (``lam = kl_ridge * tr(Xc^T Xc) / (n d)``; the absolute value is reported
        in ``details["kl_fit"]``).

    Returns
    -------
    PropertyResult
        ``raw``: ``strong_r2_train/test``, ``refined_r2_train/test``,
        ``refined_faithfulness``, ``kl_mean_test``, ``kl_faithfulness``; ``identified``:
        ``dist_r2_train/test``, ``dist_faithfulness``, (``dist_accuracy``,
        ``model_accuracy`` with objects); ``witness``: :class:`RelationWitness`.
    """
    model = check_model(model)
    if not isinstance(spec, RelationSpec):
        raise TypeError(
            f"spec must be a RelationSpec, got {type(spec).__name__}; pass "
            "RelationSpec(subjects=rows, queries=rows, answers=tokens)"
        )
    if structure is not None:
        resolve_structure(model, structure, pivot)
    answers, objects = spec.answers, spec.objects
    rs, rq = model.row_indices(spec.subjects), model.row_indices(spec.queries)
    if len(rs) != len(rq):
        raise AllOrNoneError(
            f"subjects has {len(rs)} rows but queries has {len(rq)}: row i of queries must "
            "be subject i followed by the query"
        )
    subjects, queries = model.subset(rows=rs), model.subset(rows=rq)
    n_s, d = subjects.n, subjects.d
    if n_s < 4:
        raise AllOrNoneError(f"relational linearity needs at least 4 subjects, got {n_s}")
    Y = resolve_tokens(subjects, answers, "answers")
    if len(Y) < 2:
        raise AllOrNoneError(f"answers must contain at least 2 distinct tokens, got {len(Y)}")
    excluded: list[dict] = []
    obj_idx: np.ndarray | None = None
    if objects is not None:
        if len(objects) != n_s:
            raise AllOrNoneError(f"objects has {len(objects)} entries for {n_s} subjects")
        pos = {int(t): i for i, t in enumerate(Y)}
        oi = subjects.col_indices(list(objects))
        missing = [objects[i] for i, t in enumerate(oi) if int(t) not in pos]
        if missing:
            raise AllOrNoneError(f"objects not among the answers: {missing[:5]!r}")
        obj_idx = np.array([pos[int(t)] for t in oi])
    train, test = split(n_s, test_fraction, seed)
    if len(train) <= d + 1:
        excluded.append(
            {
                "item": "fit",
                "reason": f"only {len(train)} training subjects for d={d}: the least-squares "
                "fits are underdetermined; ridge chosen by generalised cross-validation",
            }
        )

    Fs, Fq = subjects.F, queries.F
    G0_Y = subjects.G0(pivot, rows=Y)  # answers only: |Y| x d, never V x d
    T = Fq @ G0_Y.T  # (n_s, m): the model's answer log-odds L[s+q, Y_q]
    own = T.argmax(axis=1)

    # strong form
    W, b = affine_lstsq(Fs[train], Fq[train], ridge="gcv")
    strong_pred = Fs @ W.T + b
    raw: dict[str, float] = {
        "strong_r2_train": r2(Fq[train], strong_pred[train]),
        "strong_r2_test": r2(Fq[test], strong_pred[test]),
    }

    # refined form (least squares on Gamma coordinates)
    Gam = orth(G0_Y.T)  # d x gamma
    Wg, bg = affine_lstsq(Fs[train], Fq[train] @ Gam, ridge="gcv")
    ref_map = RelationMap(A=Gam @ Wg, a=Gam @ bg)
    ref_coords = Fs @ Wg.T + bg
    ref_T = ref_map(Fs) @ G0_Y.T
    raw["refined_r2_train"] = r2(Fq[train] @ Gam, ref_coords[train])
    raw["refined_r2_test"] = r2(Fq[test] @ Gam, ref_coords[test])
    raw["refined_faithfulness"] = _agree(ref_T[test], own[test])
    hits: dict[str, np.ndarray] = {"refined_faithfulness": _hits(ref_T[test], own[test])}

    kl_map = None
    kl_T: np.ndarray | None = None
    kl_seconds = 0.0
    kl_info: dict[str, Any] | None = None
    if kl:
        t_kl = time.perf_counter()
        P = np.exp(log_softmax(T, axis=1))
        H = G0_Y @ Gam
        Wk, bk, kl_info = kl_fit(Fs[train], P[train], H, kl_ridge)
        kl_map = RelationMap(A=Gam @ Wk, a=Gam @ bk)
        kl_T = kl_map(Fs) @ G0_Y.T
        raw["kl_mean_train"] = _mean_kl(T[train], kl_T[train])
        raw["kl_mean_test"] = _mean_kl(T[test], kl_T[test])
        raw["kl_faithfulness"] = _agree(kl_T[test], own[test])
        hits["kl_faithfulness"] = _hits(kl_T[test], own[test])
        kl_seconds = time.perf_counter() - t_kl

    # distribution form, through the factors: rows of L_S = (F_S R_G^T) Q_G^T
    R_G = r_factor(subjects.G, shift=subjects.pivot_vector(pivot))
    Z = canonical_features(Fs @ R_G.T)
    Cz, beta = affine_lstsq(Z[train], T[train], ridge="gcv")
    dist_T = Z @ Cz.T + beta
    ident: dict[str, float] = {
        "dist_r2_train": r2(T[train], dist_T[train]),
        "dist_r2_test": r2(T[test], dist_T[test]),
        "dist_faithfulness": _agree(dist_T[test], own[test]),
    }
    hits["dist_faithfulness"] = _hits(dist_T[test], own[test])
    if obj_idx is not None:
        ident["dist_accuracy"] = _agree(dist_T[test], obj_idx[test])
        hits["dist_accuracy"] = _hits(dist_T[test], obj_idx[test])
        ident["model_accuracy"] = float(np.mean(own == obj_idx))
        raw["refined_accuracy"] = _agree(ref_T[test], obj_idx[test])

    # condition on the refined map, with M_S (not M)
    st_s, M_S, J_S, inv_op = _subject_geometry(subjects, pivot)
    num = np.linalg.norm(Wg @ J_S) if J_S.shape[1] else 0.0
    den = np.linalg.norm(Wg @ M_S)
    size = float(num / den) if den > 0 else float(num)
    witness = RelationWitness(map=ref_map, kl_map=kl_map, J_S=inv_op, G0_Y=G0_Y)
    details: dict[str, Any] = {
        "answers": Y.tolist(),
        "train": train,
        "test": test,
        "dim_Gamma": Gam.shape[1],
        "dim_M_S": M_S.shape[1],
        "dim_M_S_cap_N_perp": J_S.shape[1],
        "k_S": st_s.k,
        "predicted_logodds_refined": ref_T,
        "predicted_logodds_dist": dist_T,
        "model_logodds": T,
        "strong_map_A": W,
        "strong_map_a": b,
        "strong_rel_residual_test": rel(Fq[test] - strong_pred[test], Fq[test]),
        "n_train": len(train),
        "n_test": len(test),
        "ci_level": 0.95,
        "ci": {k: list(bootstrap_ci(h, seed)) for k, h in hits.items()},
        "decided": len(test) >= MIN_HELD_OUT,
        "min_held_out": MIN_HELD_OUT,
        "kl_seconds": round(kl_seconds, 3),
        "kl_fit": kl_info,
    }
    if obj_idx is not None:
        details["model_correct"] = _model_correct(
            own, obj_idx, test, {"refined": ref_T, "kl": kl_T if kl else None, "dist": dist_T}, seed
        )
    # the majority-answer baseline: a constant map answering the training subjects' most
    # frequent own answer; a faithfulness is read as a finding only when its interval is above
    maj = int(np.bincount(own[train], minlength=len(Y)).argmax()) if len(train) else 0
    majority = float(np.mean(own[test] == maj)) if len(test) else float("nan")
    lo = details["ci"]["dist_faithfulness"][0]
    details["majority_answer"] = int(Y[maj])
    details["beats_majority"] = bool(len(test) and lo > majority)
    if len(test) < MIN_HELD_OUT:
        details["note"] = (
            f"too few subjects to decide: {len(test)} held out (< {MIN_HELD_OUT}); "
            "faithfulness is shown with its bootstrap interval only"
        )
    elif not details["beats_majority"]:
        details["decided"] = False
        details["note"] = (
            f"not decided: the dist_faithfulness interval (lower end {lo:.3g}) is not above "
            f"the majority answer's {majority:.3g} (one constant answer does as well)"
        )
    return PropertyResult.from_condition(
        SPEC.name,
        name,
        raw,
        ident,
        "P_Gamma A_q (M_S cap N^perp) = 0: "
        "||P_Gamma A_q P_{M_S cap N^perp}|| / ||P_Gamma A_q P_{M_S}||",
        size,
        default_tol(subjects, tol),
        baseline={"majority_answer": majority},
        excluded=excluded,
        details=details,
        witness=witness,
    )


def relation_logodds(
    m: RelationMap, model: NextTokenPredictor, rows: Any, answers: Any, pivot: Pivot = "center"
) -> np.ndarray:
    """Answer log-odds predicted by a relation map in ``model``: ``(A f(s) + a)^T g0(y)``.

    Returns (len(rows), len(answers)). Use it to check a transported map.
    """
    r = model.row_indices(rows)
    Y = resolve_tokens(model, answers, "answers")
    return m(model.F[r]) @ model.G0(pivot, rows=Y).T


def _model_correct(
    own: np.ndarray,
    obj_idx: np.ndarray,
    test: np.ndarray,
    scores: dict[str, np.ndarray | None],
    seed: int,
) -> dict[str, Any]:
    """Faithfulness on the held-out subjects the model itself answers correctly (LRE's
    protocol): those whose true object is the model's argmax over the answer set ``Y_q``.

    The maps are the ones fitted on all training subjects; only the evaluation set is
    filtered, so the unfiltered figures are unchanged. Below :data:`MIN_HELD_OUT` held-out
    model-correct subjects the figures are not read as findings (``decided`` False).
    """
    correct = own == obj_idx
    tc = np.asarray(test)[correct[np.asarray(test)]] if len(test) else np.zeros(0, dtype=int)
    out: dict[str, Any] = {
        "rule": "true object = the model's argmax over the relation's answer set Y_q",
        "n_subjects": int(correct.sum()),
        "subjects": np.flatnonzero(correct).tolist(),
        "test": tc.tolist(),
        "n_test": len(tc),
        "decided": len(tc) >= MIN_HELD_OUT,
        "ci": {},
    }
    for form, S in scores.items():
        if S is None:
            continue
        key = f"{form}_faithfulness"
        out[key] = _agree(S[tc], own[tc])
        out["ci"][key] = list(bootstrap_ci(_hits(S[tc], own[tc]), seed))
    return out


def _hits(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return (scores.argmax(axis=1) == truth).astype(np.float64)


def _agree(scores: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(scores.argmax(axis=1) == truth)) if len(truth) else float("nan")


def _mean_kl(T: np.ndarray, S: np.ndarray) -> float:
    if len(T) == 0:
        return float("nan")
    lp, lq = log_softmax(T, axis=1), log_softmax(S, axis=1)
    return float((np.exp(lp) * (lp - lq)).sum(axis=1).mean())


def _items(det: Mapping[str, Any]) -> tuple[list[dict], list[str], list[str]] | None:
    """One row per subject: held out or not, the model's answer, and whether the
    distribution-form and refined maps pick it."""
    if "model_logodds" not in det:
        return None
    T = np.asarray(det["model_logodds"])
    own = T.argmax(axis=1)
    test = np.zeros(T.shape[0], dtype=bool)
    test[np.asarray(det["test"], dtype=int)] = True
    dist = np.asarray(det["predicted_logodds_dist"]).argmax(axis=1)
    ref = np.asarray(det["predicted_logodds_refined"]).argmax(axis=1)
    answers = det.get("answers")
    rows = [
        {
            "item": i,
            "test": bool(test[i]),
            "model_answer": int(answers[own[i]]) if answers is not None else int(own[i]),
            "identified.dist_agrees": bool(dist[i] == own[i]),
            "raw.refined_agrees": bool(ref[i] == own[i]),
        }
        for i in range(T.shape[0])
    ]
    return rows, ["identified.dist_agrees", "model_answer"], ["raw.refined_agrees"]


def _s(name: str, meaning: str, identified: bool | None, where: Any = None) -> Statistic:
    return Statistic(name, meaning, identified, where or ("identified" if identified else "raw"))


SPEC = register_property(
    PropertySpec(
        name="relational",
        title="Relational linearity",
        note="Is f(s + q) an affine function of f(s)? Fitted on a train split, evaluated on "
        "held-out subjects. The distribution form L[s+q, Y] = C L[s, :] + beta is identified; "
        "the strong form is not. The verdict uses the condition P_Gamma A (M_S cap N^perp) = 0.",
        statistics=(
            _s("strong_r2_train", "train R^2 of f(s+q) ~ A f(s) + a (strong form)", False),
            _s("strong_r2_test", "held-out R^2 of f(s+q) ~ A f(s) + a (strong form)", False),
            _s("refined_r2_train", "train R^2 of the refined form on Gamma", False),
            _s("refined_r2_test", "held-out R^2 of the answers' log-odds, refined form", False),
            _s(
                "refined_faithfulness",
                "held-out share where the refined map picks the model's own top answer",
                False,
            ),
            _s(
                "refined_accuracy",
                "held-out share where the refined map picks the true object",
                False,
            ),
            _s("kl_mean_train", "train mean KL of the KL probe on the answer set", False),
            _s("kl_mean_test", "held-out mean KL of the KL probe on the answer set", False),
            _s(
                "kl_faithfulness",
                "held-out share where the KL probe picks the model's answer",
                False,
            ),
            _s(
                "dist_r2_train",
                "train R^2 of L[s+q, Y] = C L[s, :] + beta (distribution form)",
                True,
            ),
            _s("dist_r2_test", "held-out R^2 of the distribution form", True),
            _s(
                "dist_faithfulness",
                "held-out share where the distribution-form map picks the model's own top answer",
                True,
            ),
            _s(
                "dist_accuracy",
                "held-out share where the distribution form picks the true object",
                True,
            ),
            _s(
                "model_accuracy",
                "share of subjects where the model's top answer is the true object",
                True,
            ),
            _s(
                "majority_answer",
                "held-out faithfulness of one constant answer (the training subjects' most "
                "frequent model answer): the floor a relation map must beat with its interval",
                True,
                "baseline",
            ),
        ),
        headline="dist_faithfulness",
        headline_raw="refined_faithfulness",
        baseline_of="the training subjects' most frequent model answer, held out",
        function=relational,
        witness=RelationWitness,
        # only the refined least-squares form is protected: the strong form never transfers,
        # and the KL probe's ridge penalty is Euclidean (its optimum moves with the coordinates)
        protected_raw=("refined_",),
        items=_items,
    )
)
