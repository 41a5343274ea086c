"""Locate files of Debian packages that ``scripts/install.sh`` unpacks (without installing).

The install script runs ``apt-get download PKG`` and ``dpkg-deb -x PKG_*.deb ROOT`` for the
data packages allornone reads (``bible-kjv``, ``bible-kjv-text``, ``r-cran-janeaustenr``,
``wordnet-base``, ``fortunes``), so a package file ``/usr/share/wordnet/data.adj`` lands at
``ROOT/usr/share/wordnet/data.adj``.

Search order for a file:

1. ``$ALLORNONE_DEBIAN_ROOT`` when that variable is set, else ``~/.cache/allornone/debian``;
2. the system root ``/`` (a package installed with ``apt-get install``), unless
   ``$ALLORNONE_NO_SYSTEM_DEBIAN`` is set to a non-empty value other than ``0`` (tests use
   this to make sure they read the unpacked root and nothing else).

When the file is in neither place, :class:`~allornone._validation.AllOrNoneError` names the
package and the commands that fetch it.
"""

from __future__ import annotations

import os
from pathlib import Path

from allornone._validation import AllOrNoneError

__all__ = ["cache_dir", "debian_root", "debian_search_roots", "find_debian_file"]

ENV_ROOT = "ALLORNONE_DEBIAN_ROOT"
ENV_NO_SYSTEM = "ALLORNONE_NO_SYSTEM_DEBIAN"
ENV_CACHE = "ALLORNONE_CACHE"


def cache_dir() -> Path:
    """The allornone cache folder: ``$ALLORNONE_CACHE`` or ``~/.cache/allornone`` (not created)."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "allornone"


def debian_root() -> Path:
    """Where ``scripts/install.sh`` unpacks Debian packages.

    ``$ALLORNONE_DEBIAN_ROOT`` when set, else ``~/.cache/allornone/debian`` (the install
    script's default; it does not follow ``$ALLORNONE_CACHE``).
    """
    env = os.environ.get(ENV_ROOT)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "allornone" / "debian"


def _system_fallback_enabled() -> bool:
    value = os.environ.get(ENV_NO_SYSTEM, "").strip()
    return value in ("", "0")


def debian_search_roots() -> list[Path]:
    """The roots searched, in order: the unpacked root, then ``/`` unless disabled."""
    roots = [debian_root()]
    if _system_fallback_enabled():
        roots.append(Path("/"))
    return roots


def find_debian_file(relpath: str, package: str) -> Path:
    """Return the path of ``relpath`` (e.g. ``"usr/share/wordnet/data.adj"``) from ``package``.

    Raises :class:`AllOrNoneError` naming the package and how to get it when no search root
    holds the file.
    """
    rel = relpath.lstrip("/")
    for root in debian_search_roots():
        candidate = root / rel
        if candidate.exists():
            return candidate
    root = debian_root()
    searched = ", ".join(str(r / rel) for r in debian_search_roots())
    raise AllOrNoneError(
        f"/{rel} from the Debian package '{package}' was not found (looked in: {searched}). "
        f"Get it with `bash scripts/install.sh` (unpacks into ${ENV_ROOT}, default "
        f"~/.cache/allornone/debian), or by hand: `apt-get download {package} && "
        f"dpkg-deb -x {package}_*.deb {root}`"
    )
