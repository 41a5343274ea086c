"""``python -m allornone``: the command line (see :mod:`allornone.cli`)."""

import sys

from .cli import main

sys.exit(main())
