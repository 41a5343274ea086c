"""Command line: ``allornone audit|compare|train|study|extract`` (also ``python -m allornone``).

Exit codes: 0 success, 2 a clear error (bad input, model refused, output folder exists),
130 interrupted (Ctrl-C). Outputs are written to a temporary folder next to ``--out`` and
moved into place only when complete, so a failed or interrupted run never leaves a
half-written report and never damages the previous one.

One module per command (:mod:`.audit` with ``--layers``, :mod:`.compare`, :mod:`.train`,
:mod:`.study`, :mod:`.extract`), each with its ``add_parser(sub)`` and ``run(args)``;
:mod:`.parser` builds the parser from them, :mod:`.output` holds the output-folder rules,
:mod:`.options` the shared options and :mod:`.process` the signals, one-line errors and
:func:`main`. Every name below stays importable from ``allornone.cli``.
"""

from __future__ import annotations

from .audit import audit_config as _audit_config  # noqa: F401 (old name)
from .audit import run as cmd_audit
from .audit import run_layers as cmd_audit_layers
from .compare import run as cmd_compare
from .extract import run as cmd_extract
from .options import add_model_options as _common  # noqa: F401 (old name)
from .options import add_plugin_arg as _plugin_arg  # noqa: F401 (old name)
from .options import add_step_options as _step_options  # noqa: F401 (old name)
from .options import out_path as _out_path  # noqa: F401 (old name)
from .options import safe_name as _safe_name  # noqa: F401 (old name)
from .options import step_option_values as _step_option_values  # noqa: F401 (old name)
from .output import (
    FAMILY_ENTRIES,
    REPORT_ENTRIES,
    check_replaceable,
    prepare_family_out,
    prepare_out,
    write_atomically,
)
from .output import check_parent as _check_parent  # noqa: F401 (old name)
from .output import foreign_entries as _foreign_entries  # noqa: F401 (old name)
from .output import publish as _publish  # noqa: F401 (old name)
from .output import refuse_cwd as _refuse_cwd  # noqa: F401 (old name)
from .output import shown as _shown  # noqa: F401 (old name)
from .output import written_by_allornone as _written_by_allornone  # noqa: F401 (old name)
from .parser import COMMAND_MODULES, COMMANDS, build_parser
from .process import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    Terminated,
    main,
)
from .process import hide_library_progress as _hide_library_progress  # noqa: F401 (old name)
from .process import install_signal_handlers as _install_signal_handlers  # noqa: F401 (old name)
from .process import load_plugins as _load_plugins  # noqa: F401 (old name)
from .process import one_line as _one_line  # noqa: F401 (old name)
from .process import restore_signal_handlers as _restore_signal_handlers  # noqa: F401 (old name)
from .process import user_error as _user_error  # noqa: F401 (old name)
from .study import run as cmd_study
from .train import run as cmd_train

__all__ = [
    "COMMANDS",
    "COMMAND_MODULES",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "FAMILY_ENTRIES",
    "REPORT_ENTRIES",
    "Terminated",
    "build_parser",
    "check_replaceable",
    "cmd_audit",
    "cmd_audit_layers",
    "cmd_compare",
    "cmd_extract",
    "cmd_study",
    "cmd_train",
    "main",
    "prepare_family_out",
    "prepare_out",
    "write_atomically",
]
# the private helpers above keep their old names for code that imported them from cli.py:
# _audit_config, _common, _out_path, _safe_name, _check_parent, _foreign_entries, _publish,
# _refuse_cwd, _shown, _written_by_allornone, _hide_library_progress, _install_signal_handlers,
# _one_line, _restore_signal_handlers, _user_error
