"""allornone: which linear properties of a language model are facts about its distribution.

See ``docs/THEORY.md`` (after All or None, Marconato et al., AISTATS 2025; the installed
package carries a copy: :func:`theory_path`). The core API
(numpy only) is re-exported here; the heavier parts are submodules that load on first use,
so ``import allornone`` stays cheap and torch is imported only when a model is::

    import allornone as aon
    aon.structure(aon.NextTokenPredictor(F, G))    # core: numpy only
    aon.properties.parallelism(model, pairs)       # properties: numpy only
    aon.models.load("smollm2")                     # models: imports torch/transformers
    aon.audit.run_audit(...)                       # the audit (and aon.family, aon.testing)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._tables import to_frame
from ._validation import AllOrNoneError, AllOrNoneTypeError
from .calibration import Calibrated, calibrate, logratio_agreement, map_similarity
from .distances import (
    Distances,
    LogitDistances,
    PaperDLLV,
    distances,
    logit_distances,
    paper_d_llv,
    representation_dissimilarity,
)
from .equivalence import Equivalence, equivalence
from .predictor import NextTokenPredictor, as_predictor
from .sampler import EquivalentSample, sample_equivalent
from .structure import Structure, reduced, structure, subspace_of

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import (  # noqa: F401
        audit,
        data,
        errors,
        family,
        models,
        properties,
        registry,
        report,
        testing,
    )

__version__ = "0.1.0"

#: Submodules reachable as attributes of the package, imported on first access.
SUBMODULES = (
    "audit",
    "data",
    "errors",
    "family",
    "models",
    "properties",
    "registry",
    "report",
    "testing",
)

__all__ = [
    "AllOrNoneError",
    "AllOrNoneTypeError",
    "Calibrated",
    "Distances",
    "Equivalence",
    "LogitDistances",
    "EquivalentSample",
    "NextTokenPredictor",
    "PaperDLLV",
    "Structure",
    "__version__",
    "as_predictor",
    "calibrate",
    "distances",
    "equivalence",
    "logit_distances",
    "logratio_agreement",
    "map_similarity",
    "paper_d_llv",
    "sample_equivalent",
    "structure",
    "reduced",
    "representation_dissimilarity",
    "subspace_of",
    "theory_path",
    "to_frame",
    # submodules (lazy)
    "audit",
    "data",
    "errors",
    "family",
    "models",
    "properties",
    "registry",
    "report",
    "testing",
]


def theory_path() -> Path:
    """Path of ``THEORY.md`` inside the installed package: the document that defines every
    number the tool prints (the same text as ``docs/THEORY.md`` in the repository)."""
    return Path(__file__).with_name("THEORY.md")


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] == "allornone":
                raise
            raise ImportError(
                f"allornone.{name} needs {exc.name!r}, which is not installed: "
                "pip install 'allornone[audit]' (models only: 'allornone[models]')"
            ) from exc
        globals()[name] = module
        return module
    raise AttributeError(f"module 'allornone' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
