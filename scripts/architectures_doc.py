"""Regenerate docs/ARCHITECTURES.md from the verified table (tiny model of every registry
architecture, built and checked by tests/arch_zoo.py). Usage: python scripts/architectures_doc.py
[--check]: with --check, exit 1 when the page is stale instead of writing it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import arch_zoo  # noqa: E402


def main(argv: list[str]) -> int:
    tok = arch_zoo.tokenizer()
    rows = []
    for name in arch_zoo.names():
        row = arch_zoo.verify(name, tok)
        print(f"{name:14s} {row['kind']:12s} gap {row['gap']:.1e} steer {row['steer_err']:.1e}")
        rows.append(row)
    text = arch_zoo.render(rows)
    doc = ROOT / "docs" / "ARCHITECTURES.md"
    if "--check" in argv:
        stale = not doc.is_file() or doc.read_text(encoding="utf-8") != text
        print("docs/ARCHITECTURES.md is stale" if stale else "docs/ARCHITECTURES.md is current")
        return int(stale)
    doc.write_text(text, encoding="utf-8")
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
