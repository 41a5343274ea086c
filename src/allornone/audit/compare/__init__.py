"""``allornone compare MODEL_A MODEL_B``: two models on the same contexts and shared tokens.

:mod:`.compute` runs the comparison (:func:`run_compare` returns a JSON-ready dict, schema
in docs/RESULTS_SCHEMA.md, ``"kind": "compare"``); :mod:`.render` writes its report.
"""

from .compute import (
    CompareConfig,
    SharedModel,
    compare_properties,
    map_residuals,
    run_compare,
    shared_tokens,
)
from .render import build_blocks, summary_table, write_compare

__all__ = [
    "CompareConfig",
    "SharedModel",
    "build_blocks",
    "compare_properties",
    "map_residuals",
    "run_compare",
    "shared_tokens",
    "summary_table",
    "write_compare",
]
