"""The audit (``allornone audit``): structure, properties and the equivalence class of a model,
written as report.html / report.md / results.json / figures (see docs/RESULTS_SCHEMA.md)."""

from .pipeline import SCHEMA_VERSION, AuditConfig, run_audit

__all__ = ["SCHEMA_VERSION", "AuditConfig", "run_audit"]
