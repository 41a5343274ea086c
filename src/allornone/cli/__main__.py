"""``python -m allornone.cli``: the same as ``python -m allornone``."""

import sys

from . import main

sys.exit(main())
