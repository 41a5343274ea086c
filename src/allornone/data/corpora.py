"""Real English text: the King James Bible, Jane Austen's six novels, and Unix fortunes.

All three come from Debian packages unpacked by ``scripts/install.sh`` (see
:mod:`allornone.data.debian`); nothing needs network access at run time. Their formats are
parsed by :mod:`allornone.data.readers`.
"""

from __future__ import annotations

import os
import subprocess

from allornone._io import write_cache_text
from allornone._validation import AllOrNoneError
from allornone.data.debian import cache_dir, find_debian_file
from allornone.data.readers import parse_kjv_output, read_fortune_file, read_janeaustenr

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
    verses = parse_kjv_output(_run_bible(), KJV_N_VERSES)
    write_cache_text(cached, "\n".join(verses) + "\n")  # read-only/full cache: a warning, go on
    return verses


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
    books = read_janeaustenr(str(rdx.parent), tuple(AUSTEN_TITLES))
    for title, lines in zip(AUSTEN_TITLES.values(), books):
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
        cookies += read_fortune_file(path)
    return cookies
