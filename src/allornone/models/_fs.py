"""Cache file helpers: atomic writes with the user's umask, content hashes, stale temp files.

Every temporary file or folder the model caches create is named ``.<name>.tmp-<pid>-<hex>``
next to its final place and removed on any exception, Ctrl-C included. A process killed
outright (SIGKILL, power loss) cannot clean up: :func:`clean_stale` removes such leftovers
whose process is gone on the next run. Files and folders are created with the mode the
user's umask gives (never a fixed mode), so a shared cache follows the user's policy; files
of writers that ignore the umask (safetensors always creates 0600) are given that mode too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from .._io import umask

__all__ = [
    "apply_umask",
    "atomic_file",
    "atomic_write_bytes",
    "clean_stale",
    "file_mode",
    "pid_alive",
    "sha256_file",
    "temp_dir",
    "temp_name",
    "umask",
    "warn_damaged",
]

_TEMP = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{8}$")
#: Temporary folders of allornone versions before the pid was in the name, e.g. ``.smollm2-
#: k2j4_x9a`` (``tempfile.mkdtemp``); removed when older than this many seconds.
_LEGACY = re.compile(r"^\.[A-Za-z0-9._-]+-[a-z0-9_]{8}$")
LEGACY_STALE_SECONDS = 3600.0


def file_mode() -> int:
    """Mode of a new regular file under the user's umask (``0o666 & ~umask``)."""
    return 0o666 & ~umask()


def apply_umask(folder: Path) -> None:
    """Give every file in ``folder`` the umask mode (for writers that create 0600 files)."""
    mode = file_mode()
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.chmod(p, mode)


def temp_name(final: Path) -> Path:
    """A fresh temporary sibling of ``final`` that records this process's id."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale(folder: Path, *, legacy: bool = False) -> list[Path]:
    """Remove the temporary files/folders in ``folder`` left by dead processes.

    Only names this module creates are touched (``.<name>.tmp-<pid>-<hex>``, and with
    ``legacy=True`` the ``.<name>-<8 chars>`` folders of older versions, when older than
    :data:`LEGACY_STALE_SECONDS`). Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        m = _TEMP.match(p.name)
        if m is not None:
            pid = int(m.group(1))
            if pid == os.getpid() or pid_alive(pid):
                continue  # in use by this or another live process
        elif legacy and _LEGACY.match(p.name) and p.is_dir():
            try:
                if now - p.stat().st_mtime < LEGACY_STALE_SECONDS:
                    continue
            except OSError:
                continue
        else:
            continue
        _remove(p)
        removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary file is created with mode ``0o666 & ~umask``; on any exception or
    interrupt it is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())  # the writer may have recreated it 0600
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def temp_dir(final: Path) -> Iterator[Path]:
    """A temporary folder next to ``final`` (mode from the umask), removed on any exit that
    does not move it away: use it to build a folder, then move it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def warn_damaged(path: Path, why: str, action: str = "deleted, rebuilding it") -> None:
    """The one warning about a damaged cache entry (it is then deleted and rebuilt)."""
    from ._batching import user_stacklevel

    warnings.warn(
        f"cache entry {path} is damaged ({why}): {action}",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
