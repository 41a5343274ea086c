"""``python -m allornone``: the command line (see :mod:`allornone.cli`)."""

import sys

from .cli import main

try:
    code = main()
except KeyboardInterrupt:  # pragma: no cover - between the command's end and the exit
    code = 130
if code in (129, 130, 143):  # pragma: no cover - exercised by the subprocess tests
    try:
        from allornone_cli import exit_interrupted
    except ImportError:
        pass
    else:
        exit_interrupted(code)
sys.exit(code)
