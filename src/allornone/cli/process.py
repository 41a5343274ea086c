"""The process around a command: signals, hidden progress bars, one-line errors, :func:`main`.

Exit codes: 0 success, 2 a clear error (bad input, model refused, output folder exists),
130 interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP; any other exception is a bug (1).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from .._validation import AllOrNoneError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every ``finally`` removes its temporary files."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def install_signal_handlers() -> dict[int, Any]:
    """SIGTERM/SIGHUP raise :class:`Terminated` (where they have no handler yet); returns
    the previous handlers, which :func:`main` puts back when it returns."""
    import signal

    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                previous[sig] = signal.signal(sig, _raise_terminated)
        except (ValueError, OSError):  # not the main thread, or not allowed here
            pass
    return previous


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)


@contextlib.contextmanager
def hide_library_progress() -> Iterator[None]:
    """``--no-progress`` also hides the bars huggingface_hub and transformers draw ("Loading
    weights", "Writing model shards", downloads) for the length of one command, then turns
    them back on. huggingface_hub is imported first (it reads its environment switch once, on
    import), then switched off by its own call; the switch is set in the environment only for
    train's worker processes. (A GGUF file's first conversion still shows a plain tqdm bar.)"""
    key = "HF_HUB_DISABLE_PROGRESS_BARS"
    saved = os.environ.get(key)
    try:
        import huggingface_hub.utils as hub
    except ImportError:  # the core install: nothing of theirs to hide
        yield
        return
    user_off = hub.are_progress_bars_disabled()
    os.environ[key] = "1"
    hub.disable_progress_bars()
    if "transformers.utils.logging" in sys.modules:  # else it starts off, from the hub's state
        sys.modules["transformers.utils.logging"].disable_progress_bar()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved
        if not user_off:
            hub.enable_progress_bars()
            if "transformers.utils.logging" in sys.modules:
                sys.modules["transformers.utils.logging"].enable_progress_bar()


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def user_error(e: BaseException) -> str | None:
    """The one-line message of an error that is the user's or the machine's (not a bug)."""
    if isinstance(e, AllOrNoneError):  # AllOrNoneTypeError included
        return one_line(e)
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        what = e.strerror or one_line(e) or type(e).__name__
        if isinstance(e, PermissionError):
            return f"{where}permission denied: choose a folder you can write (--out) or read"
        if isinstance(e, FileNotFoundError):
            return f"{where}no such file or folder"
        return f"{where}{what} ({type(e).__name__})"
    if isinstance(e, ImportError):
        return f"{one_line(e)} (a dependency is missing: pip install 'allornone[audit]')"
    if isinstance(e, MemoryError) or "OutOfMemory" in type(e).__name__:
        return f"out of memory ({one_line(e)[:200]}): pass a smaller --batch-size or use --quick"
    return None


def load_plugins(argv: Sequence[str] | None) -> None:
    """Import the ``--plugin`` modules before the parser is built (they may add options)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=None)
    known, _ = pre.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if known.plugin:
        from ..audit.plugins import load_plugins as load

        load(known.plugin)


def _run_command(args: argparse.Namespace) -> int:
    """The command of ``args``, inside the switches its options ask for."""
    from .parser import COMMANDS

    with contextlib.ExitStack() as stack:
        if getattr(args, "no_progress", False):
            stack.enter_context(hide_library_progress())
        if getattr(args, "allow_nonlinear_head", False):
            from .options import nonlinear_head_allowed

            stack.enter_context(nonlinear_head_allowed())
        if getattr(args, "trust_pickle", False):
            from ..models import allow_pickle

            stack.enter_context(allow_pickle())
        return COMMANDS[args.command](args)


def interrupted_note(args: argparse.Namespace | None) -> str:
    """What an interrupted command kept: its module's ``interrupted_note(args)`` (train keeps
    its finished models and checkpoints, extract its shards), else that nothing was written."""
    from .parser import COMMAND_MODULES

    nothing = "nothing was written (any previous report is intact)"
    if args is None:
        return nothing
    for module in COMMAND_MODULES:
        note = getattr(module, "interrupted_note", None)
        if module.NAME == args.command and note is not None:
            try:
                return note(args) or nothing
            except OSError:  # the folder cannot be read: say only what is sure
                return f"what was written so far in {args.out} is kept"
    return nothing


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, 2 for an error, 130 interrupted).

    A user error (bad input, a missing or unwritable path, a refused model, a missing
    dependency) is one line on stderr and exit 2; Ctrl-C (anywhere, imports included) is one
    line and exit 130 (128 + the signal for SIGTERM/SIGHUP). Any other exception is a bug
    and keeps its traceback (exit 1); ``--debug`` shows every traceback.
    """
    from .parser import build_parser

    args: argparse.Namespace | None = None
    previous: dict[int, Any] = {}
    try:
        previous = install_signal_handlers()
        load_plugins(argv)
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # argparse: usage errors exit 2, --help/--version exit 0
            return int(e.code or 0) if not isinstance(e.code, str) else EXIT_ERROR
        return _run_command(args)
    except KeyboardInterrupt as e:
        if args is not None and args.debug:
            raise
        if isinstance(e, Terminated):
            code, what = 128 + e.signum, "terminated"
        else:
            code, what = EXIT_INTERRUPTED, "interrupted"
        print(f"\nallornone: {what}; {interrupted_note(args)}", file=sys.stderr)
        return code
    except Exception as e:
        msg = user_error(e)
        if msg is None or (args is not None and args.debug):
            raise
        print(f"allornone: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        restore_signal_handlers(previous)
