"""Real English text: the King James Bible, Jane Austen's six novels, and Unix fortunes.

All three come from Debian packages unpacked by ``scripts/install.sh`` (see
:mod:`allornone.data.debian`); nothing needs network access at run time.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import struct
import subprocess
import warnings
import zlib
from pathlib import Path

from allornone._io import atomic_write_text
from allornone._validation import AllOrNoneError
from allornone.data.debian import cache_dir, find_debian_file

__all__ = [
    "AUSTEN_SOURCE",
    "AUSTEN_TITLES",
    "FORTUNES_SOURCE",
    "KJV_SOURCE",
    "austen_books",
    "austen_lines",
    "fortunes",
    "kjv_verses",
]

KJV_SOURCE = "King James Bible (public domain), Debian bible-kjv-text via the bible-kjv tool"
AUSTEN_SOURCE = "Jane Austen's six novels, Debian r-cran-janeaustenr (MIT; texts public domain)"
FORTUNES_SOURCE = "Unix fortune cookies, Debian fortunes (free licences, mixed)"

#: janeaustenr variable name -> the book title ``janeaustenr::austen_books()`` uses.
AUSTEN_TITLES = {
    "sensesensibility": "Sense & Sensibility",
    "prideprejudice": "Pride & Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}

_KJV_CACHE_NAME = "kjv-verses-v1.txt"
_KJV_REF = re.compile(r"^[1-3]?[A-Za-z]+\d+:\d+\s+")
KJV_N_VERSES = 31102


def _run_bible() -> str:
    binary = find_debian_file("usr/bin/bible", "bible-kjv")
    data = find_debian_file("usr/lib/bible.data", "bible-kjv-text")
    cmd = [str(binary), "-f", "-p", str(data.parent), "gen1:1-rev22:21"]
    env = dict(os.environ, COLUMNS="100000")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120
        )
    except OSError as exc:
        raise AllOrNoneError(
            f"could not run {binary} ({exc}). It needs libreadline8: `apt-get install libreadline8`"
        ) from exc
    if proc.returncode != 0:
        raise AllOrNoneError(
            f"`{' '.join(cmd)}` failed with exit code {proc.returncode}: "
            f"{proc.stderr.strip()[:500]}"
            " (if a shared library is missing: `apt-get install libreadline8`)"
        )
    return proc.stdout


def _parse_kjv(output: str) -> list[str]:
    verses = []
    for line in output.splitlines():
        if not line.strip():
            continue
        match = _KJV_REF.match(line)
        if match is None:
            raise AllOrNoneError(f"unexpected line from the bible tool: {line[:80]!r}")
        verses.append(line[match.end() :].strip())
    if len(verses) != KJV_N_VERSES:
        raise AllOrNoneError(
            f"the bible tool gave {len(verses)} verses, expected {KJV_N_VERSES}; is the "
            "bible-kjv-text package complete?"
        )
    return verses


def kjv_verses() -> list[str]:
    """The 31,102 verses of the King James Bible, Genesis 1:1 to Revelation 22:21.

    Text only (the ``Ge1:1`` references are stripped). The first call runs the Debian
    ``bible`` tool (packages ``bible-kjv`` and ``bible-kjv-text``) and caches the verses in
    ``$ALLORNONE_CACHE/kjv-verses-v1.txt`` (default ``~/.cache/allornone``), one per line,
    written atomically; later calls read the cache.
    """
    cached = cache_dir() / _KJV_CACHE_NAME
    if cached.is_file():
        verses = cached.read_text(encoding="utf-8").splitlines()
        if len(verses) == KJV_N_VERSES:
            return verses
    verses = _parse_kjv(_run_bible())
    atomic_write_text(cached, "\n".join(verses) + "\n")
    return verses


def _parse_r(raw: bytes) -> object:
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS"
        return rdata.conversion.convert(rdata.parser.parse_data(raw, expand_altrep=True))


@functools.lru_cache(maxsize=4)
def _read_austen(data_dir: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Read janeaustenr's lazy-load database (``Rdata.rdx`` index + ``Rdata.rdb`` blobs).

    The ``.rdx`` is gzip-compressed serialised R: a list whose ``variables`` element maps
    each data set name to ``(offset, length)`` in the ``.rdb``. Each ``.rdb`` entry is a
    4-byte big-endian uncompressed length followed by a zlib stream of serialised R.
    """
    folder = Path(data_dir)
    try:
        index = _parse_r(gzip.decompress((folder / "Rdata.rdx").read_bytes()))
        rdb = (folder / "Rdata.rdb").read_bytes()
        books = []
        variables = index["variables"]  # type: ignore[index]
        for var, title in AUSTEN_TITLES.items():
            offset, length = (int(x) for x in variables[var])
            blob = rdb[offset : offset + length]
            (size,) = struct.unpack(">I", blob[:4])
            raw = zlib.decompress(blob[4:])
            if len(raw) != size:
                raise ValueError(f"{var}: {len(raw)} bytes after zlib, header says {size}")
            lines = tuple(str(x) for x in _parse_r(raw))  # type: ignore[attr-defined]
            books.append((title, lines))
    except AllOrNoneError:
        raise
    except Exception as exc:  # corrupt or unexpected package contents
        raise AllOrNoneError(
            f"could not read Jane Austen's novels from {folder}/Rdata.{{rdx,rdb}} "
            f"({type(exc).__name__}: {exc}); reinstall r-cran-janeaustenr with "
            "`bash scripts/install.sh`"
        ) from exc
    return tuple(books)


def austen_books(keep_blank: bool = False) -> dict[str, list[str]]:
    """Jane Austen's six novels as ``{title: lines}``, in publication order.

    Titles follow ``janeaustenr::austen_books()``: "Sense & Sensibility", "Pride & Prejudice",
    "Mansfield Park", "Emma", "Northanger Abbey", "Persuasion". Lines are the package's
    hard-wrapped text lines (about 70 characters, sentences cross lines), stripped; blank lines
    (paragraph breaks) are dropped unless ``keep_blank``. Needs the Debian package
    ``r-cran-janeaustenr`` (R itself is not needed).
    """
    rdx = find_debian_file(
        "usr/lib/R/site-library/janeaustenr/data/Rdata.rdx", "r-cran-janeaustenr"
    )
    out = {}
    for title, lines in _read_austen(str(rdx.parent)):
        stripped = [line.strip() for line in lines]
        out[title] = stripped if keep_blank else [line for line in stripped if line]
    return out


def austen_lines() -> list[str]:
    """All non-blank lines of the six Austen novels, book after book (see :func:`austen_books`)."""
    return [line for lines in austen_books().values() for line in lines]


def fortunes() -> list[str]:
    """All fortune cookies of the Debian ``fortunes`` package (one string per cookie).

    Reads the plain files of ``/usr/share/games/fortunes`` (skipping the ``.dat`` indexes and
    ``.u8`` links); cookies are separated by lines holding a single ``%``. Offensive fortunes
    are in a separate package and are not read.
    """
    folder = find_debian_file("usr/share/games/fortunes", "fortunes")
    cookies: list[str] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix in (".dat", ".u8"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for chunk in re.split(r"^%\s*$", text, flags=re.MULTILINE):
            chunk = chunk.strip("\n")
            if chunk.strip():
                cookies.append(chunk)
    return cookies
