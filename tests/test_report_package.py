"""allornone.report: shared rendering (escaping, formatting) and the direction of imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from allornone.report import Block, Explanation, Table, aligned_text, fmt, render_html, render_md

SRC = Path(__file__).resolve().parents[1] / "src" / "allornone"
EVIL = "<script>alert(1)</script>"


def _blocks() -> list[Block]:
    t = Table(["name", EVIL], [[EVIL, 0.5, None, True]], {EVIL: Explanation(EVIL, True)})
    return [
        Block("h1", EVIL),
        Block("p", f"pair {EVIL}"),
        Block("table", t),
        Block("note", "<b>trusted</b>"),
    ]


def test_markdown_escapes_user_strings() -> None:
    md = render_md(_blocks())
    assert "<script" not in md
    assert "&lt;script>alert(1)&lt;/script>" in md
    assert "**trusted**" in md  # notes are trusted text, their <b> becomes bold
    assert "| &lt;script>alert(1)&lt;/script> | 0.5 | – | yes |" in md


def test_html_escapes_user_strings(tmp_path: Path) -> None:
    page = render_html(_blocks(), tmp_path, EVIL)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert "<b>trusted</b>" in page


def test_fmt_and_aligned_text() -> None:
    assert [fmt(x) for x in (None, True, 3, 0.0, 0.12345, 1e-7, float("nan"))] == [
        "–",
        "yes",
        "3",
        "0",
        "0.123",
        "1.00e-07",
        "–",
    ]
    lines = aligned_text([("a", "bb"), ("ccc", "d")]).splitlines()
    assert lines == ["a    bb", "---  --", "ccc  d"]


def test_report_is_cheap_and_knows_no_audit() -> None:
    code = (
        "import sys, allornone.report; "
        "print(any(m.startswith(('allornone.audit', 'allornone.family', 'matplotlib', 'torch'))"
        " for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every ``from X import ...``, resolved to absolute names."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    pkg = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.append((mod, [a.name for a in node.names]))
    return out


def test_renderers_import_no_private_names_and_flow_down() -> None:
    files = list((SRC / "report").glob("*.py")) + [SRC / "family" / "report.py"]
    files += list((SRC / "audit" / "compare").glob("*.py"))
    files += [SRC / "audit" / f for f in ("report.py", "figures.py", "pipeline.py", "store.py")]
    for f in files:
        for mod, names in _imports(f):
            top = mod.split(".")[1] if mod.startswith("allornone.") else ""
            if f.parent.name == "report":  # the rendering layer is below audit and family
                assert top not in ("audit", "family", "cli"), (f, mod)
            if f.name == "report.py" and f.parent.name == "family":
                assert top != "audit", (f, mod)  # family renders with allornone.report
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            assert not private, (f, mod, private)
