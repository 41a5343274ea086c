"""docs/THEORY.md is in the repository and every section the code cites exists in it.

Code, tests and docs cite the theory by section number: ``THEORY.md 3``, ``THEORY.md section
5.2``, ``THEORY 5.4, 7.5``, ``THEORY.md 1-2``, ``THEORY.md 5.3 / 5.4``. Each cited number must
be a numbered heading of docs/THEORY.md (``## 5. ...`` or ``### 5.2 ...``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "THEORY.md"
SELF = Path(__file__).resolve()

#: ``## 5. Title`` / ``### 5.2 Title``: the number of a numbered heading.
HEADING = re.compile(r"^#{2,4}[ \t]+(\d+(?:\.\d+)*)\.?[ \t]+\S", re.M)
_NUM = r"\d+(?:\.\d+)?"
#: ``THEORY.md 3``, ``THEORY.md section 4``, ``THEORY 5.2``, with lists and ranges after it.
CITE = re.compile(
    rf"THEORY(?:\.md)?(?:[ \t]+section)?[ \t]+({_NUM}(?:[ \t]*(?:-|–|/|,|and)[ \t]*{_NUM})*)"
)
#: The topic each often-cited section must keep (a renumbering that moves a topic fails).
TOPICS = {
    "1": "predictor",
    "2": "log-odds",
    "3": "subspace",
    "4": "equivalence",
    "5": "propert",
    "5.1": "parallel",
    "5.2": "relation",
    "5.3": "prob",
    "5.4": "steer",
    "6": "limit",
    "7": "test",
    "8": "departs",
    "9": "computed",
}


def _sources() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for top in ("src", "tests", "benchmarks", "scripts", "examples"):
        d = ROOT / top
        if d.is_dir():
            files += sorted(p for p in d.rglob("*") if p.suffix in (".py", ".md", ".sh", ".ipynb"))
    return [p for p in files if p.is_file() and p.resolve() != SELF]


def _headings() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for m in HEADING.finditer(text):
        line = text[m.start() : text.index("\n", m.start())]
        assert m.group(1) not in out, f"docs/THEORY.md numbers section {m.group(1)} twice"
        out[m.group(1)] = line
    return out


def _expand(spec: str) -> list[str]:
    """``"1-2"`` -> 1, 2; ``"7.4-7.6"`` -> 7.4, 7.5, 7.6; ``"5.3 / 5.4"`` -> 5.3, 5.4."""
    out: list[str] = []
    for part in re.split(r"\s*(?:/|,|and)\s*", spec.strip()):
        ends = re.split(r"\s*[-–]\s*", part)
        if len(ends) == 2:
            a, b = ends
            pa, pb = a.rpartition("."), b.rpartition(".")
            if pa[0] == pb[0] and pa[2].isdigit() and pb[2].isdigit():
                pre = pa[0] + "." if pa[0] else ""
                out += [f"{pre}{i}" for i in range(int(pa[2]), int(pb[2]) + 1)]
                continue
        out += [e for e in ends if e]
    return out


def citations() -> list[tuple[str, int, str]]:
    """Every (file, line, section) cited anywhere in the repository's text files."""
    found = []
    for path in _sources():
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            for m in CITE.finditer(line):
                for sec in _expand(m.group(1)):
                    found.append((str(path.relative_to(ROOT)), i + 1, sec))
    return found


def test_theory_doc_exists():
    assert DOC.is_file(), "docs/THEORY.md is missing: the code cites it for every number"
    assert _headings(), "docs/THEORY.md has no numbered section headings (## 1. ...)"


def test_every_cited_section_exists():
    heads = _headings()
    cites = citations()
    assert cites, "no THEORY.md citation found: the pattern no longer matches the code"
    missing = [f"{f}:{ln} cites section {s}" for f, ln, s in cites if s not in heads]
    assert not missing, "sections cited but absent from docs/THEORY.md:\n" + "\n".join(missing)


@pytest.mark.parametrize("section,word", sorted(TOPICS.items()))
def test_cited_sections_keep_their_topic(section, word):
    heads = _headings()
    assert section in heads, f"docs/THEORY.md has no section {section}"
    assert word in heads[section].lower(), (
        f"section {section} of docs/THEORY.md is {heads[section]!r}, expected it to be about "
        f"{word!r}: renumbering moves the topic every code citation points to"
    )


def test_expand_reads_lists_and_ranges():
    assert _expand("1-2") == ["1", "2"]
    assert _expand("7.4-7.6") == ["7.4", "7.5", "7.6"]
    assert _expand("5.3 / 5.4") == ["5.3", "5.4"]
    assert _expand("5.4, 7.5") == ["5.4", "7.5"]
    assert [m.group(1) for m in CITE.finditer("(THEORY.md section 4).")] == ["4"]


def test_no_reference_to_the_old_theory_files():
    """THEORY-NOTES.md was merged into docs/THEORY.md (section 8) and ../shared/docs/THEORY.md
    is not part of the repository: nothing may point to either."""
    stale = []
    for path in _sources():
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            if "THEORY-NOTES" in line or "shared/docs/THEORY" in line:
                stale.append(f"{path.relative_to(ROOT)}:{i + 1}: {line.strip()}")
    assert not stale, (
        "stale references to THEORY-NOTES.md / shared/docs/THEORY.md (rewrite them to the "
        "sections of docs/THEORY.md; THEORY-NOTES §1, §2, §3, §4 are now sections 8.1, 8.2, "
        "8.3-8.4, 8.5):\n" + "\n".join(stale)
    )
