"""The audit (``allornone audit``): structure, properties and the equivalence class of a model,
written as report.html / report.md / results.json + arrays.safetensors / figures (see
docs/RESULTS_SCHEMA.md).

>>> from allornone.audit import AuditConfig, run_audit, write_report, load_results
>>> res = run_audit(AuditConfig(quick=True))          # doctest: +SKIP
>>> write_report(res, folder)                         # doctest: +SKIP
>>> load_results(folder) == res                       # doctest: +SKIP
True
"""

from .inputs import AuditConfig
from .pipeline import run_audit
from .plugins import load_plugin, load_plugins
from .report import summary_table, write_report
from .results import (
    Analogy,
    AnalogySection,
    AuditResults,
    DemoModel,
    DemoProblem,
    EquivalenceDemo,
    ModelFacts,
    PropertyRecord,
    StructureSummary,
)
from .step import (
    AuditStep,
    Column,
    LayerInputs,
    LayerSummary,
    StepInputs,
    StepOption,
    audit_steps,
    register_step,
)
from .steps import Steps
from .store import SCHEMA_VERSION, load_results, read_tree, write_results
from .verify import Verification, verify

__all__ = [
    "SCHEMA_VERSION",
    "Analogy",
    "AnalogySection",
    "AuditConfig",
    "AuditStep",
    "Column",
    "LayerInputs",
    "LayerSummary",
    "StepInputs",
    "StepOption",
    "Verification",
    "audit_steps",
    "load_plugin",
    "load_plugins",
    "register_step",
    "verify",
    "AuditResults",
    "DemoModel",
    "DemoProblem",
    "EquivalenceDemo",
    "ModelFacts",
    "PropertyRecord",
    "Steps",
    "StructureSummary",
    "load_results",
    "read_tree",
    "run_audit",
    "summary_table",
    "write_report",
    "write_results",
]
