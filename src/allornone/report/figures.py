"""Figure helpers: matplotlib on the Agg backend (no display), one PNG per figure."""

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


def save_figure(fig: Any, path: Path, *, dpi: int = 110, tight: bool = True) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG and close it; returns ``path``."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
