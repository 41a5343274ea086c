"""Calibrated cross-model statistics: a permutation null over the context correspondence
(THEORY.md 10.3).

After Groger, Wen and Brbic (ICML 2026, arXiv 2602.14486): raw similarity scores between two
models grow with the width of the representations and with any search over layers or
coordinates, so a raw score of 0.6 can be what two unrelated models get. The remedy is to
compare the score with what the same statistic gives when the pairing of contexts between the
two models is broken. :func:`calibrate` computes a statistic on paired per-context data
``(X, Y)`` (row ``i`` of both belongs to context ``i``), then on ``permutations`` copies with
the rows of ``Y`` shuffled (seeded: ``rng = numpy.random.default_rng(seed)``, one
``rng.permutation(n)`` per copy), and reports

- ``raw``, the null's 5 %, 50 % and 95 % quantiles;
- ``calibrated``, the paper's form (its Algorithm 1, as in its package
  ``calibrated-similarity``): ``clamp((raw - tau) / (1 - tau), 0, 1)`` for a similarity
  (1 = identical), with ``tau`` (``threshold``) the ``(1 - alpha)`` critical value of the null:
  the order statistic ``ceil((1 - alpha)(K + 1))`` of the ``K + 1`` values ``raw`` and the ``K``
  null values, ascending (``alpha = 0.05``). 0 whenever the score is not above what 95 % of the
  shuffled pairings get, 1 for identical data. For a distance (0 = identical) the mirror image
  (the statistic negated): ``tau`` is the lower critical value and ``calibrated =
  clamp((tau - raw) / tau, 0, 1)``;
- ``median_calibrated``, this library's earlier form (not the paper's): ``(raw - m) / (1 - m)``
  with ``m`` the null median (``1 - raw / m`` for a distance), unclamped: about 0 at chance,
  negative below it;
- ``p_value = (1 + #{null at least as extreme as raw}) / (1 + permutations)``: the chance of a
  score this good with the correspondence broken (at least ``1 / (1 + permutations)``).

Two cross-model statistics come with it: :func:`map_similarity` (one minus the held-out
residual of the best linear map between two representations) and :func:`logratio_agreement`
(the mean correlation across contexts of matching columns: for the log-ratio columns of a
family of token pairs, the cross-model agreement of parallelism, THEORY.md 5.1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._tables import TableMixin, _frame, plain
from ._validation import AllOrNoneError, as_matrix

__all__ = [
    "Calibrated",
    "calibrate",
    "critical_value",
    "logratio_agreement",
    "map_similarity",
    "paper_calibrated",
]

#: Default number of shuffled copies for the null.
DEFAULT_PERMUTATIONS = 99
#: Default significance level of the critical value ``tau`` (the paper's).
DEFAULT_ALPHA = 0.05
KINDS = ("similarity", "distance")


@dataclass(frozen=True, eq=False)
class Calibrated(TableMixin):
    """A cross-model statistic with its permutation null (THEORY.md 10.3).

    Attributes
    ----------
    name, kind : str
        What was measured; ``"similarity"`` (1 = identical) or ``"distance"`` (0 = identical).
    raw : float
        The statistic on the paired data.
    null_q05, null_median, null_q95 : float
        Quantiles of the statistic over shuffled pairings.
    threshold : float
        ``tau``, the ``(1 - alpha)`` critical value from ``raw`` and the null (the ``alpha``
        lower one for a distance).
    calibrated : float
        The paper's form: ``clamp((raw - tau) / (1 - tau), 0, 1)`` (similarity) or
        ``clamp((tau - raw) / tau, 0, 1)`` (distance): 1 identical, 0 not significant.
    median_calibrated : float
        This library's earlier form: ``(raw - m) / (1 - m)`` (similarity) or ``1 - raw / m``
        (distance), ``m`` the null median, unclamped: 1 identical, about 0 at chance.
    alpha : float
    p_value : float
        ``(1 + #{null at least as good as raw}) / (1 + permutations)``.
    permutations : int
    null : ndarray
        The null values themselves.
    """

    name: str
    kind: str
    raw: float
    null_q05: float
    null_median: float
    null_q95: float
    threshold: float
    calibrated: float
    median_calibrated: float
    alpha: float
    p_value: float
    permutations: int
    null: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.repr}

    def to_frame(self, *, per_item: bool = True) -> Any:
        """One row (``null`` left out); all numbers are functions of the paired data."""
        cols = ["raw", "null_q05", "null_median", "null_q95", "threshold", "calibrated"]
        cols += ["median_calibrated", "p_value"]
        return _frame(self.summary(), cols, [])

    def _repr_html_(self) -> str:
        import html

        return html.escape(repr(self))


def calibrate(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    X: Any,
    Y: Any,
    *,
    kind: str = "similarity",
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    name: str | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> Calibrated:
    """``statistic(X, Y)`` against its null ``statistic(X, Y[perm])`` over shuffled rows.

    Parameters
    ----------
    statistic : callable
        Takes two arrays with one row per context and returns a float.
    X, Y : array-like, shape (n, p) and (n, q)
        Per-context data of the two models (rows paired; widths may differ).
    kind : "similarity" or "distance"
    permutations : int
        Shuffled copies (default 99: p-values down to 0.01).
    alpha : float
        Significance level of the critical value ``tau`` (default 0.05, the paper's).
    """
    if not callable(statistic):
        raise AllOrNoneError(
            f"statistic must be a function of (X, Y), got {type(statistic).__name__}"
        )
    if kind not in KINDS:
        raise AllOrNoneError(f"kind must be 'similarity' or 'distance', got {kind!r}")
    if (
        not isinstance(permutations, int | np.integer)
        or isinstance(permutations, bool)
        or permutations < 1
    ):
        raise AllOrNoneError(f"permutations must be an integer >= 1, got {permutations!r}")
    if not (isinstance(alpha, int | float) and not isinstance(alpha, bool) and 0 < alpha < 1):
        raise AllOrNoneError(f"alpha must be a number in (0, 1), got {alpha!r}")
    Xa, _ = as_matrix(X, "X")
    Ya, _ = as_matrix(Y, "Y")
    if Xa.shape[0] != Ya.shape[0]:
        raise AllOrNoneError(
            f"X has {Xa.shape[0]} rows but Y has {Ya.shape[0]}: both need one row per context"
        )
    if Xa.shape[0] < 3:
        raise AllOrNoneError(f"calibration needs at least 3 paired rows, got {Xa.shape[0]}")
    raw = float(statistic(Xa, Ya))
    rng = np.random.default_rng(seed)
    null = np.array(
        [float(statistic(Xa, Ya[rng.permutation(Ya.shape[0])])) for _ in range(int(permutations))]
    )
    q05, med, q95 = (float(v) for v in np.quantile(null, [0.05, 0.5, 0.95]))
    if kind == "similarity":
        tau = critical_value(raw, null, alpha)
        cal = paper_calibrated(raw, tau)
        med_cal = (raw - med) / (1 - med) if med != 1 else float("nan")
        hits = int(np.sum(null >= raw))
    else:  # the mirror image: the statistic negated, best value 0
        tau = -critical_value(-raw, -null, alpha)
        cal = paper_calibrated(-raw, -tau, best=0.0)
        med_cal = 1 - raw / med if med != 0 else float("nan")
        hits = int(np.sum(null <= raw))
    return Calibrated(
        name=str(name or getattr(statistic, "__name__", None) or "statistic"),
        kind=kind,
        raw=raw,
        null_q05=q05,
        null_median=med,
        null_q95=q95,
        threshold=float(tau),
        calibrated=float(cal),
        median_calibrated=float(med_cal),
        alpha=float(alpha),
        p_value=(1 + hits) / (1 + int(permutations)),
        permutations=int(permutations),
        null=null,
    )


def critical_value(raw: float, null: np.ndarray, alpha: float = DEFAULT_ALPHA) -> float:
    """``tau``: the ``ceil((1 - alpha)(K + 1))``-th smallest of ``raw`` and the ``K`` null values
    (Groger, Wen and Brbic, arXiv 2602.14486, Algorithm 1)."""
    combined = np.sort(np.concatenate([[float(raw)], np.asarray(null, dtype=float)]))
    K = combined.size - 1
    idx = min(max(int(np.ceil((1.0 - alpha) * (K + 1))) - 1, 0), K)
    return float(combined[idx])


def paper_calibrated(raw: float, tau: float, *, best: float = 1.0) -> float:
    """``clamp((raw - tau) / (best - tau), 0, 1)``, the denominator at least ``1e-12`` (the
    paper's calibrated score with ``smax = best``)."""
    return float(np.clip((raw - tau) / max(best - tau, 1e-12), 0.0, 1.0))


def map_similarity(X: np.ndarray, Y: np.ndarray, *, seed: int = 0, train: float = 0.7) -> float:
    """``1 - ||X_te W - Y_te|| / ||Y_te - mean||`` for the least-squares map (with an offset)
    fitted on a seeded ``train`` share of the rows and scored on the rest (1: ``Y`` is exactly
    an affine image of ``X``; 0: no better than the mean; negative: worse). Refused when the
    fit is underdetermined (more coordinates than training rows): a minimum-norm map then
    extrapolates wildly on shuffled rows, the null median goes to large negative values and
    the calibrated value to 1 whatever the data."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    n = X.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    cut = min(max(int(train * n), 1), n - 1)
    if X.shape[1] + 1 > cut:
        raise AllOrNoneError(
            f"map_similarity: {X.shape[1]} coordinates (+ offset) but {cut} training rows: the "
            "map is underdetermined (it interpolates, and its permutation null is meaningless); "
            "use fewer coordinates (e.g. the leading effective ones, at most a third of the "
            "rows) or more contexts"
        )
    tr, te = perm[:cut], perm[cut:]
    X1 = np.hstack([X, np.ones((n, 1))])
    W = np.linalg.lstsq(X1[tr], Y[tr], rcond=None)[0]
    den = float(np.linalg.norm(Y[te] - Y[te].mean(axis=0)))
    if den == 0:
        return 0.0
    return 1.0 - float(np.linalg.norm(X1[te] @ W - Y[te])) / den


def logratio_agreement(X: np.ndarray, Y: np.ndarray) -> float:
    """Mean over columns ``j`` of ``corr_rows(X[:, j], Y[:, j])`` (matching columns; columns
    constant in either model are skipped). With ``X[:, j] = F_a D^a_j`` and ``Y[:, j] = F_b D^b_j``
    the log-ratio columns of the pairs of a family (THEORY.md 5.1), 1 means the two models'
    log-ratios move together across every context."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    if X.shape != Y.shape:
        raise AllOrNoneError(f"X and Y must have the same shape, got {X.shape} and {Y.shape}")
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    nx, ny = np.linalg.norm(Xc, axis=0), np.linalg.norm(Yc, axis=0)
    ok = (nx > 0) & (ny > 0)
    if not ok.any():
        return 0.0
    return float(np.mean((Xc[:, ok] * Yc[:, ok]).sum(axis=0) / (nx[ok] * ny[ok])))
