"""User plugins: ``allornone audit --plugin MODULE_OR_FILE`` (also ``compare``).

A plugin is a Python module (an importable name, or a ``.py`` file) that registers a property
(:func:`allornone.registry.register_property`) and its audit step
(:func:`allornone.audit.step.register_step`) when imported; ``examples/my_property.py`` is a
complete one and docs/EXTENDING.md says how. The user names the plugin on the command line,
so running its code is the user's explicit request; nothing else the tool reads (a model
folder, a cache, a data file) is ever executed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .._hashing import file_sha256
from .._validation import AllOrNoneError
from ..registry import registered_names
from .step import audit_steps

__all__ = ["load_plugin", "load_plugins", "plugin_record", "unload_plugins"]

_LOADED: dict[str, ModuleType] = {}


def load_plugin(ref: str) -> ModuleType:
    """Import the plugin ``ref`` (a ``.py`` file path or a module name) once; returns it.

    Raises AllOrNoneError with one line: the file or module is missing, or the plugin failed
    while importing (its exception named), or it registered nothing.
    """
    ref = str(ref)
    if ref in _LOADED:
        return _LOADED[ref]
    before = (set(registered_names()), {s.name for s in audit_steps()})
    looks_like_file = ref.endswith(".py") or "/" in ref or "\\" in ref
    try:
        if looks_like_file:
            module = _from_file(Path(ref))
        else:
            try:
                module = importlib.import_module(ref)
            except ModuleNotFoundError as e:
                if e.name and ref.startswith(e.name):
                    raise AllOrNoneError(
                        f"--plugin {ref}: no module named {e.name!r}; pass an importable module "
                        "name or the path of a .py file (e.g. --plugin examples/my_property.py)"
                    ) from None
                raise
    except AllOrNoneError:
        raise
    except Exception as e:  # noqa: BLE001 - the plugin's own error, named in one line
        raise AllOrNoneError(
            f"--plugin {ref}: the plugin failed while importing: {type(e).__name__}: {e}"
        ) from e
    after = (set(registered_names()), {s.name for s in audit_steps()})
    if after == before:
        raise AllOrNoneError(
            f"--plugin {ref}: the module registered no property and no audit step; call "
            "allornone.registry.register_property(...) and allornone.audit.step."
            "register_step(...) at import (docs/EXTENDING.md)"
        )
    _LOADED[ref] = module
    return module


def unload_plugins() -> None:
    """Forget every loaded plugin and remove what it registered (properties and steps whose
    functions live in the plugin's module)."""
    from ..registry import property_specs, unregister_property
    from .step import unregister_step

    names = {m.__name__ for m in _LOADED.values()}
    for step in audit_steps():
        if getattr(step.run, "__module__", None) in names:
            unregister_step(step.name)
    for spec in property_specs():
        if getattr(spec.function, "__module__", None) in names:
            unregister_property(spec.name)
    for name in names:
        sys.modules.pop(name, None)
    _LOADED.clear()


def _from_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise AllOrNoneError(
            f"--plugin {path}: no such file; pass the path of a .py file or a module name"
        )
    if path.suffix != ".py":
        raise AllOrNoneError(f"--plugin {path}: a plugin file must be a .py file")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"allornone_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise AllOrNoneError(f"--plugin {path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_plugins(refs: Sequence[str] | None) -> list[ModuleType]:
    """:func:`load_plugin` for each of ``refs`` (in order)."""
    return [load_plugin(r) for r in refs or ()]


def plugin_record(refs: Sequence[str] | None) -> list[dict[str, Any]]:
    """What results.json records of each plugin: its name and, for a file, its SHA-256."""
    out = []
    for ref in refs or ():
        entry: dict[str, Any] = {"plugin": str(ref)}
        p = Path(ref)
        if p.is_file():
            entry["sha256"] = file_sha256(p)
        out.append(entry)
    return out
