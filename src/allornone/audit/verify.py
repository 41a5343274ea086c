"""``allornone verify REPORT_DIR``: re-run what an audit's certificate records and say, figure
by figure, whether its identified numbers are reproduced.

The certificate (``results.json`` → ``certificate``) holds the command line, package versions,
the SHA-256 of the model files and of every input file, a digest of the contexts and the seed.
:func:`verify` checks that the report is an audit of this version, that the model files and the
input files are the ones recorded, re-runs the audit with the recorded configuration (``quick``:
without the relations, the analogies and the equivalence class, the slowest parts) and
compares every identified figure within ``rtol``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._hashing import file_sha256
from .._tables import PlainRepr
from .._validation import AllOrNoneError
from .inputs import AuditConfig
from .results import AuditResults
from .step import audit_steps
from .store import load_results

__all__ = ["FigureCheck", "Verification", "identified_figures", "verify"]

#: Steps ``verify --quick`` leaves out (and the equivalence class).
QUICK_SKIPS = ("relations", "analogies")


@dataclass(frozen=True)
class FigureCheck(PlainRepr):
    """One identified figure: as reported, as reproduced, their difference."""

    figure: str
    reported: float | None
    reproduced: float | None
    difference: float
    ok: bool


@dataclass(frozen=True)
class Verification(PlainRepr):
    """The outcome: ``reproduced`` when every compared figure agrees within ``rtol``."""

    folder: str
    reproduced: bool
    compared: int
    failed: tuple[FigureCheck, ...]
    max_difference: float
    rtol: float
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        head = "reproduced" if self.reproduced else "NOT reproduced"
        lines = [
            f"{head}: {self.compared} identified figures compared, max |difference| "
            f"{self.max_difference:.3g} (rtol {self.rtol:g})"
        ]
        for c in self.failed[:30]:
            lines.append(f"  differs: {c.figure}: {c.reported!r} reported, {c.reproduced!r} now")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def identified_figures(res: AuditResults, *, skip: tuple[str, ...] = ()) -> dict[str, float]:
    """Every identified number of an audit, by a path (``properties/<kind>/<name>/<stat>``)."""
    out: dict[str, float] = {}
    st = res.structure
    for key in ("k", "energy_rank", "dim_E"):
        out[f"structure/{key}"] = float(getattr(st, key))
    for r in res.restricted:
        out[f"restricted/{r.kind}/{r.name}/k"] = float(r.k)
    for p in res.properties:
        if p.property in skip:
            continue
        for key, val in p.identified.items():
            if isinstance(val, (int, float)) or val is None:
                out[f"properties/{p.property}/{p.name}/{key}"] = _num(val)
    sections_skipped = any(s.section_key and s.property in skip for s in audit_steps())
    if not sections_skipped:
        for s in res.analogy.sections:
            out[f"analogy/{s.section}/acc_identified"] = _num(s.acc_identified)
    return out


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def verify(
    folder: str | Path, *, quick: bool = False, rtol: float = 1e-4, model: Any = None
) -> Verification:
    """Re-run the audit in ``folder`` from its certificate and compare its identified figures.

    ``model``: an already loaded model object (tests); otherwise the recorded model is loaded
    after its files are checked. Raises AllOrNoneError (one line) when the folder is not an
    audit report, comes from another version, has no certificate, or its model or input files
    are absent or differ.
    """
    from .pipeline import run_audit

    folder = Path(folder)
    if not (folder / "results.json").is_file():
        raise AllOrNoneError(f"{folder}: no results.json: pass the folder of an audit report")
    res = load_results(folder)
    made_by = str(res.tool.get("version"))
    if made_by != __version__:
        raise AllOrNoneError(
            f"{folder}: made by allornone {made_by}, this is {__version__}: verify with "
            f"allornone {made_by} (pip install allornone=={made_by}) or rerun the audit"
        )
    cert = res.extra.get("certificate")
    if not isinstance(cert, dict):
        raise AllOrNoneError(
            f"{folder}: the report has no certificate (written before it was recorded): rerun "
            "the audit to get one"
        )
    _check_files(cert.get("input_files") or {}, "input file")
    if model is None:
        _check_files(cert.get("model_files") or {}, "model file")
    known = {f.name for f in fields(AuditConfig)}
    cfg = AuditConfig(**{k: v for k, v in res.config.items() if k in known})
    cfg.progress = False
    skip: tuple[str, ...] = ()
    if quick:
        cfg.steps = [s for s in _step_names() if s not in QUICK_SKIPS]
        skip = tuple(s.property for s in audit_steps() if s.name in QUICK_SKIPS)
    again = run_audit(cfg, model=model)
    notes = []
    cert2 = again.extra.get("certificate") or {}
    if cert.get("contexts_sha256") != cert2.get("contexts_sha256"):
        notes.append(
            f"the contexts differ ({cert.get('n_contexts')} recorded, "
            f"{cert2.get('n_contexts')} now): the built-in data changed"
        )
    a, b = identified_figures(res, skip=skip), identified_figures(again, skip=skip)
    failed, worst, n = [], 0.0, 0
    for key, va in a.items():
        vb = b.get(key)
        if vb is None:
            failed.append(FigureCheck(key, va, None, float("inf"), False))
            continue
        n += 1
        if np.isnan(va) and np.isnan(vb):
            continue
        diff = abs(va - vb)
        worst = max(worst, diff)
        if not diff <= rtol * max(1.0, abs(va), abs(vb)):
            failed.append(FigureCheck(key, va, vb, diff, False))
    if quick:
        notes.append("--quick: relations, analogies and the equivalence class not re-run")
    return Verification(
        folder=str(folder),
        reproduced=not failed and bool(n),
        compared=n,
        failed=tuple(failed),
        max_difference=worst,
        rtol=rtol,
        notes=tuple(notes),
    )


def _step_names() -> list[str]:
    return [s.name for s in audit_steps()]


def _check_files(recorded: dict[str, str], what: str) -> None:
    for path, digest in recorded.items():
        if not Path(path).is_file():
            raise AllOrNoneError(
                f"{what} {path} is absent here: verify needs the files the report was made "
                "from (copy them to the same path)"
            )
        now = file_sha256(path)
        if now != digest:
            raise AllOrNoneError(
                f"{what} {path} differs from the report's (sha256 {now[:12]}... now, "
                f"{digest[:12]}... recorded): verify needs the same file"
            )
