"""Calibrated cross-model statistics: a permutation null over the context correspondence
(THEORY.md 10.3).

After Groger, Wen and Brbic (ICML 2026, arXiv 2602.14486): raw similarity scores between two
models grow with the width of the representations and with any search over layers or
coordinates, so a raw score of 0.6 can be what two unrelated models get. The remedy is to
compare the score with what the same statistic gives when the pairing of contexts between the
two models is broken. :func:`calibrate` computes a statistic on paired per-context data
``(X, Y)`` (row ``i`` of both belongs to context ``i``), then on ``permutations`` copies with
the rows of ``Y`` shuffled (seeded), and reports

- ``raw``, the null's 5 %, 50 % and 95 % quantiles;
- ``calibrated``: for a similarity (1 = identical), ``(raw - m) / (1 - m)`` with ``m`` the null
  median: 1 for identical data, about 0 at chance, negative below it; for a distance
  (0 = identical), ``(m - raw) / m = 1 - raw / m``, on the same scale;
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

__all__ = ["Calibrated", "calibrate", "logratio_agreement", "map_similarity"]

#: Default number of shuffled copies for the null.
DEFAULT_PERMUTATIONS = 99
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
    calibrated : float
        ``(raw - m) / (1 - m)`` (similarity) or ``1 - raw / m`` (distance): 1 identical,
        about 0 at chance.
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
    calibrated: float
    p_value: float
    permutations: int
    null: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.repr}

    def to_frame(self, *, per_item: bool = True) -> Any:
        """One row (``null`` left out); all numbers are functions of the paired data."""
        cols = ["raw", "null_q05", "null_median", "null_q95", "calibrated", "p_value"]
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
        cal = (raw - med) / (1 - med) if med != 1 else float("nan")
        hits = int(np.sum(null >= raw))
    else:
        cal = 1 - raw / med if med != 0 else float("nan")
        hits = int(np.sum(null <= raw))
    return Calibrated(
        name=str(name or getattr(statistic, "__name__", None) or "statistic"),
        kind=kind,
        raw=raw,
        null_q05=q05,
        null_median=med,
        null_q95=q95,
        calibrated=float(cal),
        p_value=(1 + hits) / (1 + int(permutations)),
        permutations=int(permutations),
        null=null,
    )


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
