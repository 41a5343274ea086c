"""Atomic writes: a file or folder appears complete or not at all (never half-written).

Every cache, checkpoint and report in allornone goes through these helpers: the content is
written to a temporary sibling and moved into place with ``os.replace`` (atomic on POSIX).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ._validation import AllOrNoneError


@contextmanager
def atomic_path(path: str | Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``.

    For writers that want a file name (``np.save``, ``torch.save``, ``fig.savefig``,
    safetensors). On any exception the temporary file is removed and ``path`` is untouched.
    The file gets ``mode`` (default: 0666 less the user's umask, as ``open`` would give).
    An ``OSError`` that names no file (a full disk: ``No space left on device``) is raised
    again naming ``path``, so the message says where.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes files private; give the permissions a plain open() would
        os.chmod(tmp, (0o666 & ~umask()) if mode is None else mode)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent))


_CACHE_WARNED: set[tuple[str, str]] = set()


def warn_cache_skipped(path: str | Path, exc: BaseException | str) -> None:
    """The one warning that a cache could not be written: it names the path and the reason
    (``exc``: the error, or its text) and says the run goes on; each folder and reason is
    reported once per process."""
    import re
    import warnings

    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        # safetensors wraps the OS error: "Error while serializing: I/O error: File too large
        # (os error 27)" -> "File too large"
        found = re.search(r"I/O error: (.+?)(?: \(os error \d+\))?$", reason)
        reason = found.group(1) if found else reason
    key = (str(Path(path).parent), reason)
    if key in _CACHE_WARNED:
        return
    _CACHE_WARNED.add(key)
    warnings.warn(
        f"cache not written: {path}: {reason}; going on without caching it (set "
        "ALLORNONE_CACHE to a writable folder to keep the cache)",
        UserWarning,
        stacklevel=_outside_stacklevel(),
    )


def _outside_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside this package."""
    import sys

    pkg = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)  # noqa: SLF001
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def write_cache_text(path: str | Path, text: str) -> bool:
    """Write a cache file atomically, if the cache can be written: a read-only or full cache
    (any ``OSError``) is skipped with :func:`warn_cache_skipped`, and the caller goes on with
    the value it computed. Returns whether the file was written."""
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        warn_cache_skipped(path, exc)
        return False
    return True


def _host_tag() -> str:
    """A short tag of this machine, so a folder shared over the network is swept only by
    the host whose process ids the names hold."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _sibling_prefix(final: Path, what: str) -> str:
    """Name prefix of our temporary (``tmp``) or moved-aside (``old``) sibling of ``final``:
    ``.NAME.tmp-HOST-PID-``; the pid lets a later run tell a dead writer's leftovers."""
    return f".{final.name}.{what}-{_host_tag()}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another user's
        return True
    return True


def sweep_leftovers(final: str | Path) -> list[Path]:
    """Clean what a killed allornone process left beside ``final``; returns what it touched.

    Only folders named by :func:`atomic_dir` / :func:`replace_dir` on this host, whose
    writing process is dead, are touched: a temporary ``.NAME.tmp-*`` folder is deleted; a
    moved-aside ``.NAME.old-*`` folder (the previous version, if the writer was killed
    between the two renames) is moved back to ``final`` if ``final`` is missing, else
    deleted. Nothing else is ever removed.
    """
    import re

    final = Path(final).resolve()
    parent = final.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(
        rf"^\.{re.escape(final.name)}\.(tmp|old)-{_host_tag()}-(\d+)-[A-Za-z0-9_]+$"
    )
    touched = []
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return []
    for p in entries:
        m = pattern.match(p.name)
        if not m or p.is_symlink() or not p.is_dir() or _pid_alive(int(m.group(2))):
            continue
        if m.group(1) == "old" and not final.exists() and not final.is_symlink():
            os.replace(p, final)
        else:
            shutil.rmtree(p, ignore_errors=True)
        touched.append(p)
    return touched


class PublishRefused(AllOrNoneError):
    """A folder was not published: something this process may not replace is at its place.

    The new folder is kept beside it, at ``kept``; ``final`` is left exactly as it was.
    """

    def __init__(self, final: Path, kept: Path, reason: str, what: str = "folder") -> None:
        self.final, self.kept, self.reason = final, kept, reason
        super().__init__(
            f"{final} was not replaced: {reason}. It is left as it was; the new {what} is "
            f"kept beside it, in {kept}"
        )


@contextmanager
def _publish_lock(parent: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder ``parent`` while a folder is published into it,
    so two allornone processes never check and rename there at the same time. Where there
    is no ``fcntl`` or the file system refuses the lock, the checks still run unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder we may write but not open
        yield
        return
    try:
        with suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _move_beside(src: Path, final: Path, tag: str) -> Path:
    """Move folder ``src`` to a new visible sibling ``FINAL.TAG-YYYYmmdd-HHMMSS[-N]`` of
    ``final`` (claimed with ``mkdir``, so nothing is ever replaced); returns it."""
    import time

    stem = f"{final.name}.{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in range(1, 1000):
        beside = final.with_name(stem if i == 1 else f"{stem}-{i}")
        try:
            os.mkdir(beside)
        except FileExistsError:
            continue
        try:
            os.replace(src, beside)  # onto the empty folder just made
        except OSError:
            os.rmdir(beside)  # pragma: no cover - written into within microseconds
            continue
        return beside
    raise AllOrNoneError(f"no free name beside {final} to keep {src} in")  # pragma: no cover


def _claim_and_move(tmp_dir: Path, final: Path) -> str | None:
    """Move ``tmp_dir`` to the absent ``final`` without replacing anything: ``mkdir`` claims
    the name (it fails if the name exists), then the rename replaces that empty folder.
    Returns why it could not, or None."""
    try:
        os.mkdir(final)
    except FileExistsError:
        return "it appeared while this run was publishing"
    try:
        os.replace(tmp_dir, final)
    except OSError:
        return "files were written into it while this run was publishing"
    return None


def publish_dir(
    tmp_dir: Path,
    final: Path,
    may_replace: Callable[[Path], str | None],
    *,
    what: str = "folder",
) -> Path:
    """Move a fully written folder ``tmp_dir`` to ``final``, never replacing what it did not
    check at that moment; returns ``final``.

    Under an exclusive lock on the parent folder (:func:`_publish_lock`), right before the
    rename: an absent ``final`` is claimed (``mkdir``) and ``tmp_dir`` renamed onto it; an
    existing one is replaced only if ``may_replace(final)`` returns None (else it returns the
    reason). The replaced folder is moved aside, checked again there and only then deleted.
    Whenever ``final`` may not be replaced, ``tmp_dir`` is kept beside it as
    ``FINAL.new-<time>`` and :class:`PublishRefused` (an AllOrNoneError) says where and why;
    ``final`` is not touched. A process killed between the two renames leaves the old folder
    aside; :func:`sweep_leftovers` (run by the next write) puts it back.
    """
    final = Path(final)
    trash = None
    with _publish_lock(final.parent):
        if final.exists() or final.is_symlink():
            reason = may_replace(final)
            if reason is not None:
                raise PublishRefused(final, _move_beside(tmp_dir, final, "new"), reason, what)
            trash = final.with_name(_sibling_prefix(final, "old") + uuid.uuid4().hex[:8])
            os.replace(final, trash)
        reason = _claim_and_move(tmp_dir, final)
        if reason is not None:
            kept = _move_beside(tmp_dir, final, "new")
            if trash is not None:  # the previous one is kept too, visibly (never swept)
                old = _move_beside(trash, final, "old")
                reason += f" (the folder it was to replace is in {old})"
            raise PublishRefused(final, kept, reason, what)
    if trash is not None:
        if may_replace(trash) is None:  # still only what was checked: nothing added since
            shutil.rmtree(trash, ignore_errors=True)
        else:
            import warnings

            old = _move_beside(trash, final, "old")
            warnings.warn(
                f"the folder replaced at {final} changed while it was replaced; kept in {old}",
                stacklevel=2,
            )
    return final


def replace_dir(
    tmp_dir: Path,
    final: Path,
    *,
    may_replace: Callable[[Path], str | None] | None = None,
    what: str = "folder",
) -> None:
    """Move a fully written folder ``tmp_dir`` to ``final``.

    With ``may_replace`` (reports in a user's folder): :func:`publish_dir`, which replaces
    only what ``may_replace`` accepts at that moment and otherwise keeps ``tmp_dir`` beside
    ``final`` and raises :class:`PublishRefused`.

    Without it (folders only allornone writes: its caches, a family's model folders), any
    existing ``final`` is replaced: ``os.replace`` cannot replace a non-empty folder, so it
    is first renamed out of the way (atomically) and deleted after the new one is in place;
    if the rename fails the old one is put back where nothing took its place, and ours is
    discarded. A process killed between the two renames leaves the old folder aside;
    :func:`sweep_leftovers` (run by the next write) puts it back.
    """
    if may_replace is not None:
        publish_dir(tmp_dir, final, may_replace, what=what)
        return
    trash = None
    if final.exists():
        trash = final.with_name(_sibling_prefix(final, "old") + uuid.uuid4().hex[:8])
        try:
            os.replace(final, trash)
        except OSError:
            trash = None
    try:
        os.replace(tmp_dir, final)
    except OSError:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if trash is not None and not final.exists():
            os.replace(trash, final)
            trash = None
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def umask() -> int:
    """The process umask (read from /proc where it can be, so it is never changed)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_dir(
    final: str | Path,
    write: Callable[[Path], Any],
    *,
    may_replace: Callable[[Path], str | None] | None = None,
    what: str = "folder",
) -> Any:
    """Run ``write(tmp)`` on a temporary folder next to ``final``, then move it to ``final``
    (:func:`replace_dir`; with ``may_replace``, only if :func:`publish_dir` may).

    Returns what ``write`` returned. On any error or interrupt (Ctrl-C included) the
    temporary folder is removed and an existing ``final`` is left as it was; leftovers of a
    writer that was killed outright (SIGKILL) are removed by the next call
    (:func:`sweep_leftovers`). The folder gets the permissions of the user's umask (as
    ``mkdir`` would), not the private 0700 of a temporary folder.
    """
    final = Path(final).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(final)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=_sibling_prefix(final, "tmp")))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        value = write(tmp)
        replace_dir(tmp, final, may_replace=may_replace, what=what)
        return value
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def to_jsonable(x: Any) -> Any:
    """A JSON-ready copy: arrays to lists, numpy scalars to Python, NaN/inf to None (strict
    JSON has no NaN), other objects to a type tag ``"<TypeName>"``."""
    import math

    import numpy as np

    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    if x is None or isinstance(x, str):
        return x
    return f"<{type(x).__name__}>"
