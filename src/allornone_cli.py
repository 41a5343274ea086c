"""The ``allornone`` console command: imports the package inside a guard, so Ctrl-C while
numpy, scipy (or later torch) load ends with one line and exit 130, never a traceback.

Everything else is :func:`allornone.cli.main`; this module only guards the first import and
makes the exit status of an interrupted run exactly 130 (143 for SIGTERM, 129 for SIGHUP).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

#: Exit statuses of an interrupted run (Ctrl-C, SIGHUP, SIGTERM).
INTERRUPTED = frozenset({130, 129, 143})


def exit_interrupted(code: int) -> None:
    """Exit now with ``code`` after the usual shutdown work (atexit handlers, flushing).

    Python kills itself with SIGINT at exit (status -2, not 130) when a KeyboardInterrupt
    escaped an ``exec`` during an import (scipy does that), even one we caught later; exiting
    with ``os._exit`` after running the atexit handlers keeps the status we promise.
    """
    import atexit
    import os

    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream: nothing left to flush
                pass
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from allornone.cli import main as cli_main
    except KeyboardInterrupt:
        print("\nallornone: interrupted; nothing was written", file=sys.stderr)
        return 130
    except ImportError as e:
        # a Ctrl-C inside a C extension's import (numpy) surfaces as an ImportError whose
        # cause or context is the KeyboardInterrupt
        if not _caused_by_interrupt(e):
            raise
        print("\nallornone: interrupted; nothing was written", file=sys.stderr)
        return 130
    return cli_main(argv)


def _caused_by_interrupt(e: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def run(argv: Sequence[str] | None = None) -> None:
    """The console script: :func:`main`, exiting with its status."""
    try:
        code = main(argv)
        # the command is over (its report written or refused): a Ctrl-C from here on has
        # nothing left to interrupt, and must not turn the exit into a signal death (-2)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:  # between the command's end and the exit
        code = 130
    if code in INTERRUPTED:
        exit_interrupted(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
