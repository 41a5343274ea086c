"""The output-folder rules: what ``--out`` may be, and how a report is put there.

A report folder is written to a temporary folder next to ``--out`` and moved into place only
when complete (:func:`write_atomically`); ``--force`` replaces only a previous allornone report
with nothing else in it (:func:`check_replaceable`), so no user file is ever deleted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import atomic_dir, sweep_leftovers
from .._validation import AllOrNoneError

#: Every entry an allornone report folder holds (audit, compare and study write these only).
REPORT_ENTRIES = frozenset(
    {"report.html", "report.md", "results.json", "arrays.safetensors", "figures"}
)
#: What ``allornone train`` writes at the top of a family folder before its family.json.
FAMILY_ENTRIES = frozenset({"tokenizer", "data", "baseline.json"})
_MAX_MARKER_BYTES = 256 * 2**20  # a results.json larger than this is not one we wrote


def written_by_allornone(results: Path) -> bool:
    """Whether ``results`` is a results.json an allornone audit, compare or study wrote."""
    import json

    try:
        if not results.is_file() or results.stat().st_size > _MAX_MARKER_BYTES:
            return False
        tree = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(tree, dict):
        return False
    tool = tree.get("tool")
    if isinstance(tool, dict) and tool.get("name") == "allornone":
        return True  # audit (schema 2.x) and compare
    return tree.get("schema_version") == "study-1" and isinstance(tree.get("pairs"), list)


def foreign_entries(folder: Path, allowed: frozenset[str]) -> list[str]:
    """Entries of ``folder`` that allornone does not write there (``figures/`` holds PNGs)."""
    extra = []
    for p in sorted(folder.iterdir()):
        if p.name not in allowed or p.is_symlink():
            extra.append(p.name)
        elif p.name == "figures":
            if not p.is_dir():
                extra.append(p.name)
                continue
            extra += [
                f"figures/{f.name}"
                for f in sorted(p.iterdir())
                if f.is_symlink() or not f.is_file() or f.suffix != ".png"
            ]
    return extra


def shown(names: list[str]) -> str:
    """The first three names, and how many more."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def refuse_cwd(out: Path, opt: str = "--out") -> None:
    """Refuse an output folder that is the current folder or one of its parents."""
    here, target = Path.cwd().resolve(), out.resolve()
    if here == target or target in here.parents:
        raise AllOrNoneError(
            f"{opt} {out} is the current folder or contains it: choose a new folder"
        )


def check_replaceable(out: Path) -> None:
    """Raise unless ``out`` is empty or a previous allornone report with nothing else in it.

    ``--force`` replaces only such a folder: no user file is ever deleted.
    """
    if out.is_symlink():
        raise AllOrNoneError(f"--out {out} is a symbolic link: give the folder it points to")
    if not any(out.iterdir()):
        return
    if not written_by_allornone(out / "results.json"):
        raise AllOrNoneError(
            f"--force refused: {out} is not an allornone report folder (it has no results.json "
            "written by allornone) and --force replaces only a previous report: choose a new "
            "--out folder"
        )
    extra = foreign_entries(out, REPORT_ENTRIES)
    if extra:
        raise AllOrNoneError(
            f"--force refused: {out} holds files allornone did not write ({shown(extra)}) and "
            "--force would delete them: move them out or choose a new --out folder"
        )


def prepare_out(out: Path, force: bool) -> None:
    """Check ``--out`` before any model loads: a new folder, or (with ``--force``) a previous
    report that may be replaced. Raises AllOrNoneError with a one-line reason otherwise."""
    sweep_leftovers(out)  # a killed earlier run's temporary folder (or its moved-aside report)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise AllOrNoneError(f"--out {out} exists and is not a folder: choose a new --out")
        if not force:
            raise AllOrNoneError(
                f"output folder {out} already exists: choose another --out or pass --force to "
                "replace it (it is replaced only after the new report is complete)"
            )
        refuse_cwd(out)
        check_replaceable(out)
    check_parent(out)


def check_parent(out: Path) -> None:
    """Create the parent folder of ``out`` if needed; refuse one this user cannot write."""
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AllOrNoneError(
            f"--out {out}: cannot create its parent folder {parent} ({e.strerror or e})"
        ) from e
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AllOrNoneError(
            f"--out {out}: no permission to write into {parent}: choose another --out"
        )


def prepare_family_out(out: Path) -> None:
    """``train --out``: a new or empty folder, or a family folder (resumed). A folder of
    other files is refused, so training never writes among (or replaces) a user's files."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise AllOrNoneError(f"--out {out} exists and is not a folder: choose a new --out")
        if not (out / "family.json").is_file():
            extra = [
                n
                for n in foreign_entries(out, FAMILY_ENTRIES)
                if not (n.startswith(".") and ".tmp-" in n)
            ]
            if extra:
                raise AllOrNoneError(
                    f"--out {out} holds files that are not an allornone family "
                    f"({shown(extra)}): train into a new or empty folder, or into a family "
                    "folder to resume it"
                )
    check_parent(out)


def publish_refusal(force: bool) -> Callable[[Path], str | None]:
    """The check made right before a report is moved to ``--out`` (under a lock, see
    :func:`allornone._io.publish_dir`): why the folder found there may not be replaced, or
    None. Without ``--force`` nothing is replaced (a folder that appeared during the run is
    someone's); with it, only an empty folder or a report allornone wrote, as before the run."""

    def refusal(folder: Path) -> str | None:
        if not force:
            return "a folder appeared there while this run was writing its report"
        if folder.is_symlink() or not folder.is_dir():
            return "it is no longer a folder"
        if not any(folder.iterdir()):
            return None
        if not written_by_allornone(folder / "results.json"):
            return "it is no longer an allornone report folder (no results.json it wrote)"
        extra = foreign_entries(folder, REPORT_ENTRIES)
        if extra:
            return f"it now holds files allornone did not write ({shown(extra)})"
        return None

    return refusal


def write_atomically(out: Path, write: Callable[[Path], Any], force: bool = False) -> Any:
    """Run ``write(tmp)`` on a temporary folder next to ``out``; then move it to ``out``.

    On any error or interrupt the temporary folder is removed and ``out`` is untouched
    (:func:`atomic_dir`). The move replaces nothing it did not check at that moment
    (:func:`publish_refusal`): a folder found at ``out`` then that may not be replaced is
    left as it is, the new report is kept beside it (``OUT.new-<time>``) and
    :class:`allornone._io.PublishRefused` (an AllOrNoneError: exit 2) says where.
    """
    return atomic_dir(out, write, may_replace=publish_refusal(force), what="report")


def publish(
    out: Path, write: Callable[[Path], Any], summary: Callable[[], str], force: bool = False
) -> int:
    """Write a report atomically into ``out``, then print its summary and where it is."""
    write_atomically(out, write, force)
    print(summary())
    print(f"\nreport: {out / 'report.html'}  (also report.md, results.json, figures/)")
    return 0
