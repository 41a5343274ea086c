"""The ``allornone`` console command: imports the package inside a guard, so Ctrl-C while
numpy, scipy (or later torch) load ends with one line and exit 130, never a traceback.

Everything else is :func:`allornone.cli.main`; this module only guards the first import.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from allornone.cli import main as cli_main
    except KeyboardInterrupt:
        print("\nallornone: interrupted; nothing was written", file=sys.stderr)
        return 130
    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # between the command's end and the exit
        sys.exit(130)
