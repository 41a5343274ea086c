"""The built-in audit steps, one module a property; importing this package registers them.

Every module here is imported (in name order), so a new built-in property's audit step is one
new module in this folder and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_m.name}")
