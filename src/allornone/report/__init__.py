"""Rendering shared by every report of allornone (audit, compare, study).

A report is built once as a list of :class:`Block` (headings, paragraphs, tables, figures)
and rendered to a self-contained HTML page (:func:`render_html`, images embedded) and to
Markdown (:func:`render_md`), so both say the same thing. User strings (pair, relation,
label names) are escaped in both. Figures are written with :func:`save_figure` (matplotlib,
Agg backend). Layer: above the models, below :mod:`allornone.audit` and
:mod:`allornone.family`; nothing here knows what an audit is.
"""

from __future__ import annotations

from .blocks import Block, Cell, Table, aligned_text, fmt
from .explain import Explanation, mark
from .figures import BASE_C, ID_C, RAW_C, pyplot, save_figure
from .render import embed_png, render_html, render_md, write_pages

__all__ = [
    "BASE_C",
    "ID_C",
    "RAW_C",
    "Block",
    "Cell",
    "Explanation",
    "Table",
    "aligned_text",
    "embed_png",
    "fmt",
    "mark",
    "pyplot",
    "render_html",
    "render_md",
    "save_figure",
    "write_pages",
]
