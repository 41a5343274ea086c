"""Linear steering (THEORY.md 5.4): adding ``alpha v`` to ``f(x)`` at the final representation.

The predicted change of every centred log-odds is ``Delta L[x, y] = alpha v^T g0(y)``, the same
for all contexts. The shift is reproducible in every equivalent model iff ``v in M + N^perp``
<=> ``G0 v in col(L^T)``; then ``v~ = F~^T alpha_ctx`` with ``L^T alpha_ctx = G0 v``.
``condition_size`` is the relative least-squares residual
``min_beta ||G0 (v - M beta)|| / ||G0 v||`` (computed with the R factor of ``G0``; ``L`` is
never formed; like every ``condition_size`` it is measured in this model's coordinates and
NOT identified, only the verdict is read from it). The identified statistics are those of
the transferable part of the shift, ``G0 P v`` with ``P v = M beta`` (equal to the raw ones
when the condition holds).

The check against a real Hugging Face model (a hook that adds ``alpha v`` to the input of the
LM head at the last position) touches torch and lives in the models layer:
:func:`allornone.models.steering_check.measured_shift`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import AllOrNoneError, to_numpy
from ..linalg import r_factor
from ..predictor import Index, NextTokenPredictor, Pivot
from ..registry import PropertySpec, Statistic, register_property
from ..structure import Structure
from ._common import check_model, default_tol, resolve_pairs, resolve_structure, resolve_tokens
from ._result import PropertyResult, no_options


@dataclass(frozen=True, eq=False)
class SteeringWitness:
    """The witness of steering: context weights ``alpha_ctx`` (n,) with ``F^T alpha_ctx = P v``.

    :func:`~allornone.properties.transport` returns ``F~^T alpha_ctx``, the vector of the
    equivalent model with the same (transferable) log-odds shift.
    """

    alpha_ctx: np.ndarray = field(repr=False)

    def transport(self, eq: Any, **options: Any) -> np.ndarray:
        """``F~^T alpha_ctx`` (d_b,): the same (transferable) log-odds shift in model b."""
        no_options(options, "steering")
        return eq.structure_b.model.F.T @ self.alpha_ctx

    def carry_spec(
        self, eq: Any, spec: Any, options: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """The steering vector is in model coordinates: replaced by the transported one."""
        return self.transport(eq), dict(options)


# ---------------------------------------------------------------------- vectors
def vector_from_contexts(model: NextTokenPredictor, positive: Index, negative: Index) -> np.ndarray:
    """Difference of means ``mean f(positive) - mean f(negative)``, shape (d,).

    Always in ``M``, so it always transfers.
    """
    model = check_model(model)
    p, n = model.row_indices(positive), model.row_indices(negative)
    if len(p) == 0 or len(n) == 0:
        raise AllOrNoneError("positive and negative context sets must both be non-empty")
    return model.F[p].mean(axis=0) - model.F[n].mean(axis=0)


def vector_from_tokens(model: NextTokenPredictor, pairs: Sequence[tuple[Any, Any]]) -> np.ndarray:
    """Mean unembedding difference ``mean_i g(b_i) - g(a_i)`` over token pairs, shape (d,).

    May have a component in ``J_g = N cap M^perp``: check it with :func:`steering`.
    """
    model = check_model(model)
    idx, excluded = resolve_pairs(model, pairs)
    if len(idx) == 0:
        why = "; ".join(f"{e['item']!r}: {e['reason']}" for e in excluded[:5])
        raise AllOrNoneError(f"no valid token pair ({why})")
    return (model.G[idx[:, 1]] - model.G[idx[:, 0]]).mean(axis=0)


# ---------------------------------------------------------------------- prediction
def _shift_stats(shift: np.ndarray, targets: np.ndarray, off: np.ndarray) -> dict[str, float]:
    t = float(shift[targets].mean())
    o = float(shift[off].mean()) if len(off) else float("nan")
    return {"target_shift": t, "off_target_shift": o, "selectivity": t - o}


def steering(
    model: NextTokenPredictor,
    spec: Any,
    *,
    structure: Structure | None = None,
    pivot: Pivot = "center",
    tol: float | None = None,
    seed: int = 0,
    alpha: float = 1.0,
    targets: Any = None,
    off_targets: Any = None,
    name: str = "steering",
) -> PropertyResult:
    """Predicted log-odds shift of steering with ``alpha v`` and whether it transfers.

    Parameters
    ----------
    model : NextTokenPredictor (F n x d, G V x d)
    spec : array (d,)
        The steering vector ``v``, in this model's coordinates.
    structure : Structure, optional
        ``allornone.structure(model, pivot=pivot)`` to reuse.
    seed : accepted for the common signature (nothing is random).
    alpha : float
    targets : tokens (labels or indices) of the concept the vector should promote
        (default: none, then only the per-token shift is reported)
    off_targets : tokens to compare against (default: every token not in ``targets``)

    Returns
    -------
    PropertyResult
        ``raw``: ``target_shift``, ``off_target_shift``, ``selectivity`` (mean shift on targets
        minus off-targets) of ``alpha G0 v``; ``identified``: the same for the transferable
        part ``alpha G0 P v``; ``witness``: :class:`SteeringWitness` (``alpha_ctx``), with
        ``transport(result, eq) = F~^T alpha_ctx``; ``details["shift"]``: the per-token
        predicted shift (V,); ``details["v_norm"]``: ``||v||`` (coordinates: not identified).
    """
    model = check_model(model)
    vv, _ = to_numpy(spec, "v")
    vv = vv.reshape(-1)
    if vv.shape[0] != model.d:
        raise AllOrNoneError(f"v has {vv.shape[0]} entries but the model has d={model.d}")
    if not np.any(vv):
        raise AllOrNoneError("v is the zero vector")
    st = resolve_structure(model, structure, pivot)
    shift = alpha * model.G0_matmul(vv[:, None], pivot)[:, 0]  # (V,), streamed over G

    R_G = r_factor(model.G, shift=model.pivot_vector(pivot))  # ||G0 x|| = ||R_G x||
    RM = R_G @ st.M
    beta = np.linalg.lstsq(RM, R_G @ vv, rcond=None)[0]
    Pv = st.M @ beta  # transferable part, in M
    den = np.linalg.norm(R_G @ vv)
    size = float(np.linalg.norm(R_G @ vv - RM @ beta) / den) if den > 0 else 0.0
    # alpha_ctx: min-norm solution of F^T a = P v (then L^T a = G0 P v)
    a_ctx = np.linalg.lstsq(model.F.T, Pv, rcond=None)[0]
    shift_id = alpha * model.G0_matmul(Pv[:, None], pivot)[:, 0]

    if targets is not None:
        tg = resolve_tokens(model, targets, "targets")
        if off_targets is None:
            off = np.setdiff1d(np.arange(model.V), tg)
        else:
            off = resolve_tokens(model, off_targets, "off_targets")
        raw = _shift_stats(shift, tg, off)
        ident = _shift_stats(shift_id, tg, off)
    else:
        tg = off = np.zeros(0, dtype=int)
        raw = {"mean_abs_shift": float(np.abs(shift).mean())}
        ident = {"mean_abs_shift": float(np.abs(shift_id).mean())}
    details: dict[str, Any] = {
        "shift": shift,
        "identified_shift": shift_id,
        "alpha": alpha,
        "v": vv,
        "v_norm": float(np.linalg.norm(vv)),
        "transferable_part": Pv,
        "targets": tg,
        "off_targets": off,
    }
    return PropertyResult.from_condition(
        SPEC.name,
        name,
        raw,
        ident,
        "v in M + N^perp (G0 v in col(L^T)): relative least-squares residual",
        size,
        default_tol(model, tol),
        details=details,
        witness=SteeringWitness(alpha_ctx=a_ctx),
    )


def _items(det: Mapping[str, Any]) -> tuple[list[dict], list[str], list[str]] | None:
    """One row per target token: its raw and identified predicted shift."""
    if not len(det.get("targets", ())) or "shift" not in det:
        return None
    shift, shift_id = np.asarray(det["shift"]), np.asarray(det["identified_shift"])
    rows = [
        {
            "item": int(t),
            "raw.shift": float(shift[t]),
            "identified.shift": float(shift_id[t]),
        }
        for t in np.asarray(det["targets"], dtype=int)
    ]
    return rows, ["identified.shift"], ["raw.shift"]


_TARGET = "mean log-odds shift of the target tokens when alpha*v is added to f(x)"
_OFF = "mean absolute log-odds shift of the other tokens (off-target)"
_SEL = "target shift minus off-target shift (log-odds)"
_ABS = "mean |log-odds shift| over all tokens"

SPEC = register_property(
    PropertySpec(
        name="steering",
        title="Linear steering",
        note="Adding alpha v to f(x) shifts every log-odds by alpha g0(y)^T v. v is the "
        "difference of class means of f (train split); shifts are measured on held-out "
        "contexts of the first class. It transfers iff v lies in M + N^perp.",
        statistics=(
            Statistic("target_shift", _TARGET, False, "raw", "log-odds"),
            Statistic("off_target_shift", _OFF, False, "raw", "log-odds"),
            Statistic("selectivity", _SEL, False, "raw", "log-odds"),
            Statistic("mean_abs_shift", _ABS, False, "raw", "log-odds"),
            Statistic("target_shift", _TARGET, True, "identified", "log-odds"),
            Statistic("off_target_shift", _OFF, True, "identified", "log-odds"),
            Statistic("selectivity", _SEL, True, "identified", "log-odds"),
            Statistic("mean_abs_shift", _ABS, True, "identified", "log-odds"),
            Statistic(
                "prediction_error",
                "check of the computation, not a statistic of the property: max |predicted "
                "alpha g0^T v - log-odds shift measured by a forward pass| over contexts and "
                "tokens",
                None,
                "checks",
                "log-odds",
            ),
            Statistic(
                "prediction_error_vs_effect",
                "the check's prediction_error divided by the largest measured shift: above 1 "
                "the check is larger than the effect it measures (a warning is given)",
                None,
                "checks",
            ),
            Statistic("v_norm", "Euclidean norm of the steering vector v", False, "details"),
        ),
        headline="target_shift",
        function=steering,
        witness=SteeringWitness,
        protected_raw=None,
        items=_items,
    )
)
