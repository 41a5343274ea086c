"""Names from user files are text everywhere (issue 25, cases 4c and 7): a line break or a
``|`` cannot add a Markdown heading or table row to report.md, and a ``$`` cannot make
matplotlib parse math text (which failed only when the figures were drawn, after the whole
audit had run)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from audit_helpers import CONCEPTS, LABELS, RELATIONS, tiny_model

from allornone.audit import AuditConfig, AuditResults, run_audit, write_report
from allornone.report import Block, Table, pyplot, render_md, save_figure

EVIL = "a\n# injected|x"
DOLLARS = r"$\foo$ costs $x^$"  # an even number of $: math text, which fails to parse


@pytest.fixture(scope="module")
def res() -> AuditResults:
    cfg = AuditConfig(
        concepts=str(CONCEPTS), relations=str(RELATIONS), labels=str(LABELS), progress=False
    )
    return run_audit(cfg, model=tiny_model())


def _cells(row: str) -> list[str]:
    """The cells of a Markdown table row (``\\|`` is a literal bar, not a separator)."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_a_line_break_in_a_relation_name_adds_no_heading_nor_row(
    res: AuditResults, tmp_path: Path
) -> None:
    rel = res.of_kind("relational")[0]
    props = tuple(replace(p, name=EVIL) if p is rel else p for p in res.properties)
    write_report(replace(res, properties=props), tmp_path)
    md = (tmp_path / "report.md").read_text()
    lines = md.splitlines()
    assert not any(line.lstrip().startswith("# injected") for line in lines)
    rows = [line for line in lines if "injected" in line]
    assert rows, "the relation is in the report"
    for row in rows:
        if row.startswith("|"):  # a table row: as many cells as its table's header
            i = lines.index(row)
            top = i
            while top > 0 and lines[top - 1].startswith("|"):
                top -= 1
            assert len(_cells(row)) == len(_cells(lines[top])), (row, lines[top])
            assert "a # injected\\|x" in row
    assert any(r.startswith("|") for r in rows)


def test_render_md_keeps_every_name_on_its_line() -> None:
    blocks = [
        Block("h2", "title\r\n## fake"),
        Block("p", "# not a heading\u2028> not a quote"),
        Block("table", Table(["name", "x"], [[EVIL, 1.0]], {})),
    ]
    md = render_md(blocks)
    lines = md.splitlines()
    assert "## title ## fake" in lines
    assert "\\# not a heading > not a quote" in lines
    assert not any(line.startswith(("# ", "## fake", "> ")) for line in lines)
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) == 3 and len(_cells(rows[2])) == 2


def test_dollar_signs_in_names_are_drawn_as_text(res: AuditResults, tmp_path: Path) -> None:
    import matplotlib

    props = tuple(replace(p, name=f"{DOLLARS} {i}") for i, p in enumerate(res.properties))
    files = write_report(replace(res, properties=props), tmp_path)
    assert (tmp_path / "report.md").is_file() and files
    pngs = list((tmp_path / "figures").glob("*.png"))
    assert pngs and all(p.stat().st_size > 0 for p in pngs)
    # the same figure without the guard fails: the names really reach math text
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.set_title(DOLLARS)
    ax.set_xticks([0, 1], [DOLLARS, "$"])
    with pytest.raises(ValueError):
        fig.savefig(tmp_path / "raw.png")
    save_figure(fig, tmp_path / "guarded.png")
    assert (tmp_path / "guarded.png").stat().st_size > 0
    # the user's own settings are left as they were
    assert matplotlib.rcParams["text.parse_math"] is True
