"""HTML (self-contained: images embedded as data URIs) and Markdown renderings of blocks.

Both renderings escape every string that comes from the data (headings, paragraphs, cells,
captions, column names): a ``<script>`` in a pair name is shown, never run, in either file.
Only ``"note"`` blocks are trusted text (they may hold ``<b>`` tags).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from .blocks import Block, Table, fmt
from .explain import mark

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1150px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #1b9e77;padding-bottom:.2em}
h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
td.t{text-align:left;white-space:normal}
.id{color:#1b9e77;font-weight:600}.raw{color:#d95f02;font-weight:600}.fact{color:#777}
.note{background:#f6faf8;border-left:4px solid #1b9e77;padding:.6em 1em}
dl.cols{font-size:12px;color:#444;margin:.2em 0 1em}dl.cols dt{display:inline;font-weight:600}
dl.cols dd{display:inline;margin:0}dl.cols dd:after{content:"";display:block}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:12px;color:#555}
"""

_SCRIPT = """
window.addEventListener('load',function(){var im=document.images,ok=im.length>0;
for(var i=0;i<im.length;i++){if(!(im[i].complete&&im[i].naturalWidth>0))ok=false;}
document.body.setAttribute('data-images-ok',ok?'yes':'no');
document.body.setAttribute('data-images',String(im.length));});
"""

_MARKS = {"identified": True, "NOT identified": False, "fact": None}


def embed_png(path: Path) -> str:
    """A ``data:image/png;base64,...`` URI holding the PNG file ``path``."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _mark_html(identified: bool | None) -> str:
    cls = {True: "id", False: "raw", None: "fact"}[identified]
    return f'<span class="{cls}">{mark(identified)}</span>'


def render_html(blocks: Sequence[Block], folder: Path, title: str) -> str:
    """One self-contained HTML page; figure blocks name PNG files inside ``folder``."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for bl in blocks:
        if bl.kind in ("h1", "h2", "h3"):
            parts.append(f"<{bl.kind}>{html.escape(bl.content)}</{bl.kind}>")
        elif bl.kind == "p":
            parts.append(f"<p>{html.escape(bl.content)}</p>")
        elif bl.kind == "note":
            parts.append(f"<p class='note'>{bl.content}</p>")
        elif bl.kind == "figure":
            parts.append(
                f"<figure><img alt='{html.escape(bl.caption)}' "
                f"src='{embed_png(folder / bl.content)}'><figcaption>{html.escape(bl.caption)} "
                f"(figures/{html.escape(bl.content)})</figcaption></figure>"
            )
        elif bl.kind == "table":
            parts.append(_html_table(bl.content))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _html_table(t: Table) -> str:
    out = ["<table><thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in t.headers]
    out.append("</tr></thead><tbody>")
    for r in t.rows:
        cells = []
        for c in r:
            if isinstance(c, str) and c in _MARKS:
                cells.append(f"<td class='t'>{_mark_html(_MARKS[c])}</td>")
            elif isinstance(c, str):
                cells.append(f"<td class='t'>{html.escape(c)}</td>")
            else:
                cells.append(f"<td>{html.escape(fmt(c))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if t.columns:
        out.append("<dl class='cols'>")
        for k, e in t.columns.items():
            text = html.escape(e.text)
            out.append(f"<dt>{html.escape(k)}</dt><dd>: {text} ({_mark_html(e.identified)})</dd>")
        out.append("</dl>")
    return "".join(out)


def _one_line(s: str) -> str:
    """``s`` on one line: every line break (``\\n``, ``\\r``, and the others Python's
    ``splitlines`` knows) becomes a space, so a name cannot start a new Markdown line."""
    return " ".join(str(s).splitlines()) if s else str(s)


def _md(s: str) -> str:
    """Markdown text that cannot open an HTML tag (every ``<`` becomes ``&lt;``) nor a link
    or image (``[`` and ``]`` are backslash-escaped, so ``[x](javascript:...)`` stays text),
    nor a new line (a ``# heading``, a list item or a table row): line breaks become spaces."""
    return (
        _one_line(s)
        .replace("\\", "\\\\")
        .replace("<", "&lt;")
        .replace("[", "\\[")
        .replace("]", "\\]")
    )


def _md_block(s: str) -> str:
    """:func:`_md` for a text that starts a line: a leading ``#`` or ``>`` (a heading, a
    quote) is backslash-escaped."""
    text = _md(s)
    return "\\" + text if text.lstrip()[:1] in ("#", ">") else text


def _md_cell(s: str) -> str:
    return _md(s).replace("|", "\\|")


def render_md(blocks: Sequence[Block]) -> str:
    """The same blocks as Markdown (figures are links to ``figures/<file>``)."""
    lines: list[str] = []
    for bl in blocks:
        if bl.kind == "h1":
            lines += [f"# {_md(bl.content)}", ""]
        elif bl.kind == "h2":
            lines += [f"## {_md(bl.content)}", ""]
        elif bl.kind == "h3":
            lines += [f"### {_md(bl.content)}", ""]
        elif bl.kind == "p":
            lines += [_md_block(bl.content), ""]
        elif bl.kind == "note":
            lines += [bl.content.replace("<b>", "**").replace("</b>", "**"), ""]
        elif bl.kind == "figure":
            caption = _md(bl.caption)
            lines += [f"![{caption}](figures/{_md(bl.content)})", ""]
        elif bl.kind == "table":
            t: Table = bl.content
            lines.append("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
            lines.append("|" + "---|" * len(t.headers))
            for r in t.rows:
                lines.append("| " + " | ".join(_md_cell(fmt(c)) for c in r) + " |")
            lines.append("")
            for k, e in t.columns.items():
                lines.append(f"- `{_md(k)}`: {_md(e.text)} ({mark(e.identified)})")
            if t.columns:
                lines.append("")
    return "\n".join(lines)


def write_pages(blocks: Sequence[Block], folder: Path, title: str) -> None:
    """Write ``report.html`` and ``report.md`` into ``folder`` (figures in ``folder/figures``)."""
    folder = Path(folder)
    html_text = render_html(blocks, folder / "figures", title)
    (folder / "report.html").write_text(html_text, encoding="utf-8")
    (folder / "report.md").write_text(render_md(blocks), encoding="utf-8")
