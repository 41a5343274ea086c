"""``python -m allornone``: the command line (see :mod:`allornone.cli`)."""

import sys

from .cli import main

try:
    sys.exit(main())
except KeyboardInterrupt:  # pragma: no cover - between the command's end and the exit
    sys.exit(130)
