"""The README's Python example runs and says what its comments claim."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_starts_with_the_two_commands():
    first = README.read_text().splitlines()[:4]
    assert first[0] == "```bash"
    assert first[1].startswith("make demo") and first[2].startswith("make test")


def test_readme_example_runs_and_holds(capsys):
    blocks = python_blocks()
    assert blocks, "README has no python example"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    assert ns["st"].k == 3 and ns["st"].dim_J_g == 13
    eq = ns["eq"]
    assert eq.equivalent and eq.residual_f < 1e-12 and eq.residual_g < 1e-12
    out = capsys.readouterr().out.split()
    assert out[:3] == ["3", "13", "True"]
