"""Figure helpers: matplotlib on the Agg backend (no display), one PNG per figure.

Every string on a figure is drawn as plain text: a ``$`` in a pair family, relation or label
name is shown as ``$``, never parsed as math text (where ``$\\foo$`` or an odd number of
``$`` would fail only when the figure is drawn, after the whole audit has run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RAW_C = "#d95f02"  #: colour of NOT identified statistics
ID_C = "#1b9e77"  #: colour of identified statistics
BASE_C = "#7570b3"  #: colour of baselines


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: matplotlib is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PLAIN_TEXT: Any = {"text.parse_math": False, "text.usetex": False}
"""matplotlib settings under which every string is drawn as it is (no math text, no TeX)."""


def plain_text(fig: Any) -> Any:
    """``fig`` with math text and TeX off on every text it holds (titles, tick labels,
    legends, annotations): user names are drawn as written. Returns ``fig``."""
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        t.set_parse_math(False)
        t.set_usetex(False)
    return fig


def save_figure(fig: Any, path: Path, *, dpi: int = 110, tight: bool = True) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG and close it; returns ``path``.

    Every text is drawn as plain text (:func:`plain_text`; texts matplotlib creates while
    drawing, such as tick labels, get :data:`PLAIN_TEXT` too), so a ``$`` in a name cannot
    fail the figure. The user's own matplotlib settings are left as they were.
    """
    import matplotlib

    try:
        with matplotlib.rc_context(PLAIN_TEXT):
            plain_text(fig)
            if tight:
                fig.tight_layout()
            fig.savefig(path, dpi=dpi)
    finally:
        pyplot().close(fig)
    return path
