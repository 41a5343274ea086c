"""Linear probing (THEORY.md 5.3): reading a concept from ``f(s)`` on a set of contexts ``S``.

Two probes on the representations (raw, NOT identified in general):

- ``kind="logistic"``: L2-regularised logistic regression (binary or multinomial, L-BFGS);
- ``kind="mean_diff"``: difference of class means (binary: ``w = mu_1 - mu_0``; multiclass:
  nearest class mean, rows ``mu_c``).

and the log-odds probe (identified by construction): the same logistic regression on the
rows of ``L_S`` (``c`` acting on log-odds), fitted through the factors (the rows of ``L`` are
seen through ``F_S R_G^T`` with ``G0 = Q_G R_G``, in canonical coordinates; ``L`` is never
formed).

Transfer condition for each probe row ``w``: ``w in N + M_S^perp`` <=> ``F_S w = L_S c + t 1``
for some ``c`` and constant ``t`` (absorbed by the bias). ``condition_size`` is the largest
relative least-squares residual ``min ||F_S w - F_S N c - t|| / ||F_S w - mean||`` over rows,
computed with the R factor of the centred ``F_S`` (``O(n d^2)``); it is measured in this
model's coordinates (NOT identified: only the verdict is read from it). The witness is the part
``w_N = N c`` of each row in ``N`` with the adjusted bias; ``transport(eq)`` returns
``(W~, b~) = (eq.map_g(W_N), b~)`` (``= G~0^T c``), which reproduces the scores exactly in
every equivalent model when the condition holds.

Signature: ``probe(model, labels, *, structure=None, pivot="center", tol=None, seed=0,
**options)`` like every property (the spec is the list of labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._tables import plain
from .._validation import AllOrNoneError
from ..linalg import r_factor
from ..predictor import Index, NextTokenPredictor, Pivot
from ..registry import PropertySpec, Statistic, register_property
from ..structure import Structure
from ._common import (
    canonical_features,
    check_model,
    default_tol,
    resolve_structure,
    split,
)
from ._result import PropertyResult, no_options
from .fitting import accuracy, fit_logistic, predict_classes


@dataclass(frozen=True, eq=False)
class LinearProbe:
    """Scores ``f W^T + b``: W (1 x d) for a binary probe (logit of ``classes[1]``) or (c x d)."""

    W: np.ndarray
    b: np.ndarray
    classes: tuple = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))

    def transport(self, eq: Any, **options: Any) -> LinearProbe:
        """``LinearProbe(eq.map_g(W_N), b~)``: the same scores on every context of model b
        when the condition holds."""
        no_options(options, "probing")
        return LinearProbe(W=eq.map_g(self.W), b=self.b.copy(), classes=self.classes)

    def carry_spec(
        self, eq: Any, spec: Any, options: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """The labels name contexts (kept); the probe is evaluated with its transported
        weights."""
        tp = self.transport(eq)
        return spec, {**options, "weights": (tp.W, tp.b)}

    def scores(self, F: np.ndarray) -> np.ndarray:
        """(n, 1) or (n, c) scores of rows ``F`` (n x d)."""
        return np.asarray(F) @ self.W.T + self.b

    def predict(self, F: np.ndarray) -> np.ndarray:
        """Predicted class indices (into ``classes``)."""
        return predict_classes(self.scores(F))


def _labels(labels: Sequence[Any] | np.ndarray, n: int) -> tuple[np.ndarray, list]:
    lab = list(labels)
    if len(lab) != n:
        raise AllOrNoneError(f"labels has {len(lab)} entries for {n} contexts")
    classes = sorted(set(lab), key=lambda x: (str(type(x)), x))
    if len(classes) < 2:
        raise AllOrNoneError(
            f"labels have a single class ({classes[0]!r} if any): a probe needs at least 2"
            if classes
            else "labels is empty"
        )
    pos = {c: i for i, c in enumerate(classes)}
    return np.array([pos[x] for x in lab], dtype=int), classes


def _mean_diff(X: np.ndarray, y: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    mus = np.stack([X[y == j].mean(axis=0) for j in range(c)])
    if c == 2:
        w = (mus[1] - mus[0])[None, :]
        return w, np.array([-0.5 * (mus[1] @ mus[1] - mus[0] @ mus[0])])
    return mus, -0.5 * (mus**2).sum(axis=1)


def _given(weights: tuple[Any, Any], d: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        W_in, b_in = weights
    except (TypeError, ValueError) as err:
        raise AllOrNoneError("weights must be a pair (W, b)") from err
    W = np.atleast_2d(np.asarray(W_in, dtype=np.float64))
    b = np.atleast_1d(np.asarray(b_in, dtype=np.float64)).reshape(-1)
    rows = 1 if c == 2 else c
    if W.shape != (rows, d) or b.shape != (rows,):
        raise AllOrNoneError(
            f"weights must have W of shape ({rows}, {d}) and b of shape ({rows},) for {c} "
            f"classes, got {W.shape} and {b.shape}"
        )
    return W, b


def transfer_residuals(
    F_S: np.ndarray, N: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row relative residual of ``F_S w`` on ``col([F_S N, 1])`` and the N-part ``w_N``.

    Returns residuals (rows,), ``W_N`` (rows x d, each ``N c``) and the constants ``t`` with
    ``F_S w = F_S w_N + t`` on the centred fit. Uses ``R`` of the centred ``F_S`` only.
    """
    mu = F_S.mean(axis=0)
    R = r_factor(F_S, shift=mu)  # ||(F_S - mu) x|| = ||R x||
    RN = R @ N
    res = np.zeros(W.shape[0])
    W_N = np.zeros_like(W)
    for i, w in enumerate(W):
        rw = R @ w
        den = np.linalg.norm(rw)
        if N.shape[1]:
            c = np.linalg.lstsq(RN, rw, rcond=None)[0]
            W_N[i] = N @ c
        res[i] = np.linalg.norm(rw - R @ W_N[i]) / den if den > 0 else 0.0
    t = (W - W_N) @ mu
    return res, W_N, t


def probe(
    model: NextTokenPredictor,
    spec: Sequence[Any] | np.ndarray,
    *,
    structure: Structure | None = None,
    pivot: Pivot = "center",
    tol: float | None = None,
    seed: int = 0,
    rows: Index = None,
    kind: str = "logistic",
    ridge: float = 1e-3,
    test_fraction: float = 0.25,
    name: str = "probe",
    weights: tuple[Any, Any] | None = None,
) -> PropertyResult:
    """Fit a linear probe on ``f(s)`` and the log-odds probe; check the transfer condition.

    Parameters
    ----------
    model : NextTokenPredictor (F n x d, G V x d)
    spec : sequence of labels, one per selected context (any hashable class labels, >= 2
        classes)
    structure : Structure, optional
        ``allornone.structure(model, pivot=pivot)`` to reuse (its ``N`` decides the condition).
    seed : seed of the stratified train/test split
    rows : selection of contexts ``S`` (default all)
    kind : "logistic" or "mean_diff"
    ridge : L2 penalty of the logistic fits (per mean example)
    test_fraction : held-out share (stratified, seeded)
    weights : (W, b), optional
        Evaluate a given probe (W: (d,), (1, d) binary or (c, d); b: scalar or (c,)) instead of
        fitting one: the condition, accuracies and witness are computed for it.

    Returns
    -------
    PropertyResult
        ``raw``: ``train_accuracy``, ``test_accuracy`` of the probe on ``f``;
        ``identified``: ``logodds_train_accuracy``, ``logodds_test_accuracy``;
        ``baseline``: ``majority`` (held-out accuracy of the majority class, when there is
        a held-out set);
        ``witness``: ``LinearProbe(W_N, b~)`` (the part of the probe in ``N``), carried by
        ``transport(eq)``; ``details["probe_W"]``, ``["probe_b"]``: the fitted probe,
        ``details["logodds_scores"]``: the log-odds probe's scores on ``S``.
    """
    model = check_model(model)
    if kind not in ("logistic", "mean_diff"):
        raise AllOrNoneError(f"kind must be 'logistic' or 'mean_diff', got {kind!r}")
    r = model.row_indices(rows)
    if len(r) < 4:
        raise AllOrNoneError(f"a probe needs at least 4 contexts, got {len(r)}")
    y, classes = _labels(spec, len(r))
    c = len(classes)
    counts = np.bincount(y, minlength=c)
    excluded: list[dict] = [
        {"item": classes[j], "reason": "class with a single example: kept in train only"}
        for j in range(c)
        if counts[j] == 1
    ]
    train, test = split(len(r), test_fraction, seed, strata=y)
    if len(np.unique(y[train])) < c:
        raise AllOrNoneError("after the split some class has no training example")
    F_S = model.F[r]

    if weights is not None:
        W, b = _given(weights, model.d, c)
    elif kind == "logistic":
        W, b = fit_logistic(F_S[train], y[train], c, ridge=ridge)
    else:
        W, b = _mean_diff(F_S[train], y[train], c)
    pr = LinearProbe(W=W, b=b, classes=tuple(classes))
    pred = pr.predict(F_S)
    raw = {
        "train_accuracy": accuracy(pred[train], y[train]),
        "test_accuracy": accuracy(pred[test], y[test]),
    }

    # log-odds probe (identified): features = rows of L_S in canonical coordinates
    R_G = r_factor(model.G, shift=model.pivot_vector(pivot))
    Z = canonical_features(F_S @ R_G.T)
    Wl, bl = fit_logistic(Z[train], y[train], c, ridge=ridge)
    lscores = Z @ Wl.T + bl
    lpred = predict_classes(lscores)
    ident = {
        "logodds_train_accuracy": accuracy(lpred[train], y[train]),
        "logodds_test_accuracy": accuracy(lpred[test], y[test]),
    }

    st = resolve_structure(model, structure, pivot)
    res, W_N, t = transfer_residuals(F_S, st.N, W)
    witness = LinearProbe(W=W_N, b=b + t, classes=tuple(classes))
    baseline = (
        {"majority": float(max((y[test] == j).mean() for j in set(y[test].tolist())))}
        if len(test)
        else {}
    )
    details: dict[str, Any] = {
        "probe_W": pr.W,
        "probe_b": pr.b,
        "kind": kind,
        "classes": classes,
        "rows": r,
        "train": train,
        "test": test,
        "row_residuals": res,
        "scores": pr.scores(F_S),
        "logodds_scores": lscores,
    }
    return PropertyResult.from_condition(
        SPEC.name,
        name,
        raw,
        ident,
        "each probe row w in N + M_S^perp (F_S w = L_S c + t): max relative residual",
        float(res.max()),
        default_tol(model, tol),
        baseline=baseline,
        excluded=excluded,
        details=details,
        witness=witness,
    )


def probe_scores_residual(F: np.ndarray, scores: np.ndarray) -> float:
    """How well ANY affine probe on rows ``F`` reproduces ``scores`` (n x c): relative residual.

    ``min_{W, b} ||F W^T + b - scores|| / ||scores - mean||``. Near 0: some linear probe on
    these representations gives these scores; large: none does.
    """
    S = np.asarray(scores, dtype=float)
    S = S.reshape(len(S), -1)
    Fc = F - F.mean(axis=0)
    Sc = S - S.mean(axis=0)
    coef = np.linalg.lstsq(Fc, Sc, rcond=None)[0]
    den = np.linalg.norm(Sc)
    return float(np.linalg.norm(Fc @ coef - Sc) / den) if den > 0 else 0.0


def _items(det: Mapping[str, Any]) -> tuple[list[dict], list[str], list[str]] | None:
    """One row per probe row (class, or the pair of classes of a binary probe): its
    condition residual."""
    if "row_residuals" not in det:
        return None
    res = np.asarray(det["row_residuals"], dtype=float).reshape(-1)
    classes = list(det.get("classes") or range(res.size))
    if len(classes) != res.size:  # a binary probe has one row for the pair of classes
        classes = [" vs ".join(str(c) for c in classes)] * res.size
    rows = [{"item": plain(classes[i]), "condition_size": float(res[i])} for i in range(res.size)]
    return rows, [], []


SPEC = register_property(
    PropertySpec(
        name="probing",
        title="Linear probing",
        note="Can a linear read-out of f(x) predict the label? The probe on raw f uses a "
        "Euclidean penalty (not identified); the probe parametrised on log-odds rows is "
        "identified. It transfers to every equivalent model iff w lies in N + M_S^perp.",
        statistics=(
            Statistic("train_accuracy", "train accuracy of the probe on raw f(x)", False, "raw"),
            Statistic(
                "test_accuracy",
                "held-out accuracy of the probe on raw f(x) (Euclidean ridge)",
                False,
                "raw",
            ),
            Statistic(
                "logodds_train_accuracy", "train accuracy of the probe on log-odds rows of L", True
            ),
            Statistic(
                "logodds_test_accuracy",
                "held-out accuracy of the probe parametrised on log-odds rows of L",
                True,
            ),
            Statistic(
                "majority",
                "accuracy of always answering the majority class of the held-out labels (the "
                "floor a probe must beat; no model involved)",
                None,
                "baseline",
            ),
        ),
        headline="logodds_test_accuracy",
        headline_raw="test_accuracy",
        function=probe,
        witness=LinearProbe,
        protected_raw=None,
        items=_items,
    )
)
