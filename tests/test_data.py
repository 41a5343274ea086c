"""Tests of the real-data layer (allornone.data) against the unpacked Debian root.

The fixture points ``$ALLORNONE_DEBIAN_ROOT`` at the root that ``scripts/install.sh``
fills and disables the fallback to system-wide packages, so these tests read exactly what a
fresh machine has after the install script.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from allornone._validation import AllOrNoneError
from allornone.data import (
    LabelledTexts,
    Relation,
    analogy_families,
    analogy_questions,
    analogy_relations,
    antonym_pairs,
    austen_books,
    austen_lines,
    book_passages,
    builtin_relations,
    find_debian_file,
    fortunes,
    geonames_relations,
    kjv_verses,
    noun_number_contexts,
    read_labels_tsv,
    read_pairs_tsv,
    read_relations_json,
)
from allornone.data import corpora as corpora_mod
from allornone.data.debian import debian_root

_ROOT = debian_root()  # $ALLORNONE_DEBIAN_ROOT or ~/.cache/allornone/debian, read at import


@pytest.fixture(scope="module")
def _kjv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("allornone-cache")


@pytest.fixture(autouse=True)
def unpacked_root(monkeypatch: pytest.MonkeyPatch, _kjv_cache: Path) -> Path:
    """Read only the unpacked Debian root (never /usr/share/...), with a private cache."""
    if not (_ROOT / "usr/share/wordnet/data.adj").is_file():
        pytest.fail(f"no unpacked Debian data under {_ROOT}: run `bash scripts/install.sh`")
    monkeypatch.setenv("ALLORNONE_DEBIAN_ROOT", str(_ROOT))
    monkeypatch.setenv("ALLORNONE_NO_SYSTEM_DEBIAN", "1")
    monkeypatch.setenv("ALLORNONE_CACHE", str(_kjv_cache))
    return _ROOT


# ---------------------------------------------------------------- pairs


def test_analogy_families_sections_and_pairs() -> None:
    fams = analogy_families()
    assert len(fams) == 14
    by = {f.name: f for f in fams}
    assert list(by)[:5] == [
        "capital-common-countries",
        "capital-world",
        "currency",
        "city-in-state",
        "family",
    ]
    assert all(name.startswith(f"gram{i}-") for i, name in enumerate(list(by)[5:], start=1))
    ccc = by["capital-common-countries"]
    assert len(ccc) == 23
    assert ccc.pairs[0] == ("Athens", "Greece")
    assert ("Paris", "France") in ccc.pairs
    assert ("banana", "bananas") in by["gram8-plural"].pairs
    for f in fams:
        assert len(set(f.pairs)) == len(f.pairs)
        assert "questions-words" in f.source


def test_analogy_questions_counts() -> None:
    qs = analogy_questions()
    assert sum(len(v) for v in qs.values()) == 19544
    assert len(qs["capital-common-countries"]) == 506
    assert qs["family"][0] == ("boy", "girl", "brother", "sister")


def test_wordnet_antonyms() -> None:
    fam = antonym_pairs()
    assert len(fam) == 3555
    unordered = {frozenset(p) for p in fam.pairs}
    assert len(unordered) == len(fam.pairs)
    assert frozenset(("good", "bad")) in unordered
    assert frozenset(("good", "evil")) in unordered
    assert ("a priori", "a posteriori") in fam.pairs
    assert not any("_" in a or "_" in b or a == b for a, b in fam.pairs)
    assert not any(re.search(r"\((a|p|ip)\)$", w) for p in fam.pairs for w in p)
    assert len(antonym_pairs("verb")) == 476
    with pytest.raises(AllOrNoneError, match="pos="):
        antonym_pairs("adjective")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_pairs_tsv_ok(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "mine.tsv",
        "# my pairs\na\tb\nking\tqueen\nman\twoman\n\nParis\tFrance\tcapitals\nking\tqueen\n",
    )
    fams = read_pairs_tsv(path)
    assert [f.name for f in fams] == ["mine", "capitals"]
    assert fams[0].pairs == [("king", "queen"), ("man", "woman")]
    assert fams[1].pairs == [("Paris", "France")]
    assert fams[0].source == str(path)


@pytest.mark.parametrize(
    ("body", "line", "what"),
    [
        ("a\tb\nking\tqueen\nman\n", 3, "2 or 3 tab-separated columns"),
        ("king\tqueen\t\n", 1, "empty field"),
        ("# c\nking\tqueen\nx\ty\tz\tw\n", 3, "got 4"),
        ("king\t\n", 1, "empty field"),
    ],
)
def test_read_pairs_tsv_errors(tmp_path: Path, body: str, line: int, what: str) -> None:
    path = _write(tmp_path, "bad.tsv", body)
    with pytest.raises(AllOrNoneError, match=re.escape(f"{path}, line {line}")) as err:
        read_pairs_tsv(path)
    assert what in str(err.value)


def test_read_pairs_tsv_empty_and_missing(tmp_path: Path) -> None:
    with pytest.raises(AllOrNoneError, match="no pairs"):
        read_pairs_tsv(_write(tmp_path, "e.tsv", "# nothing\na\tb\n"))
    with pytest.raises(AllOrNoneError, match="does not exist"):
        read_pairs_tsv(tmp_path / "nope.tsv")


# ---------------------------------------------------------------- relations


def test_geonames_relations() -> None:
    rels = {r.name: r for r in geonames_relations()}
    assert set(rels) == {"country-capital", "country-currency", "country-continent", "city-country"}
    for name in ("country-capital", "country-currency", "country-continent"):
        subjects = rels[name].subjects
        assert len(set(subjects)) == len(subjects) >= 100
    capital = dict(rels["country-capital"].samples)
    assert capital["France"] == "Paris" and capital["Japan"] == "Tokyo"
    assert dict(rels["country-currency"].samples)["Japan"] == "Yen"
    continent = dict(rels["country-continent"].samples)
    assert continent["Brazil"] == "South America" and continent["Kenya"] == "Africa"
    assert set(continent.values()) == {
        "Africa",
        "Asia",
        "Europe",
        "North America",
        "Oceania",
        "South America",
        "Antarctica",
    }
    assert dict(rels["city-country"].samples)["Tokyo"] == "Japan"
    assert len(rels["city-country"]) >= 100
    assert rels["country-capital"].prompt("France") == "The capital of France is"


def test_builtin_relations_include_analogy() -> None:
    rels = {r.name: r for r in builtin_relations()}
    assert len(rels) == 40 + len(geonames_relations()) + len(analogy_relations())
    assert ("Greece", "Athens") in rels["analogy-country-capital"].samples
    assert len(rels["analogy-country-capital"]) == 116
    assert ("amazing", "amazingly") in rels["analogy-adjective-adverb"].samples
    for r in rels.values():
        assert all(t.count("{}") == 1 for t in r.templates)
        assert r.source


def test_relation_validates() -> None:
    with pytest.raises(AllOrNoneError, match="exactly once"):
        Relation("r", ["The capital of France is"], [("France", "Paris")])
    with pytest.raises(AllOrNoneError, match="non-empty list"):
        Relation("r", ["{} is"], [])


def test_read_relations_json_ok(tmp_path: Path) -> None:
    one = {
        "name": "capitals",
        "templates": ["The capital of {} is"],
        "samples": [{"subject": "France", "object": "Paris"}],
    }
    rels = read_relations_json(_write(tmp_path, "one.json", json.dumps(one)))
    assert rels[0].samples == [("France", "Paris")] and rels[0].name == "capitals"
    two = [one, {**one, "name": "caps2", "source": "my notes"}]
    rels = read_relations_json(_write(tmp_path, "two.json", json.dumps(two)))
    assert [r.name for r in rels] == ["capitals", "caps2"]
    assert rels[1].source == "my notes"


_GOOD = {
    "name": "caps",
    "templates": ["{} has capital"],
    "samples": [{"subject": "A", "object": "B"}],
}


@pytest.mark.parametrize(
    ("obj", "pattern"),
    [
        ({k: v for k, v in _GOOD.items() if k != "templates"}, r"relation 0 .*missing.*templates"),
        ({**_GOOD, "templates": ["no slot"]}, r"relation 0 \('caps'\): template 0 .*exactly once"),
        ({**_GOOD, "samples": []}, r"'samples' must be a non-empty list"),
        (
            {**_GOOD, "samples": [{"subject": "A", "object": "B"}, {"subject": 3, "object": "B"}]},
            r"sample 1: subject must be a non-empty string",
        ),
        ({**_GOOD, "samples": [{"subject": "A"}]}, r"sample 0 must be an object"),
        ({**_GOOD, "templates": "{} is"}, r"'templates' must be a non-empty list"),
        ({**_GOOD, "relation": "x"}, r"unknown key"),
        ([_GOOD, _GOOD], r"more than once"),
        ([_GOOD, 5], r"relation 1: expected a JSON object"),
    ],
)
def test_read_relations_json_errors(tmp_path: Path, obj: object, pattern: str) -> None:
    with pytest.raises(AllOrNoneError, match=pattern):
        read_relations_json(_write(tmp_path, "r.json", json.dumps(obj)))


def test_read_relations_json_bad_json(tmp_path: Path) -> None:
    with pytest.raises(AllOrNoneError, match=r"line 3, column"):
        read_relations_json(_write(tmp_path, "r.json", '{\n"name": "x",\n"templates": [,]}'))


# ---------------------------------------------------------------- corpora


def test_kjv_verses_and_cache(monkeypatch: pytest.MonkeyPatch, _kjv_cache: Path) -> None:
    verses = kjv_verses()
    assert len(verses) == 31102
    assert verses[0] == "In the beginning God created the heaven and the earth."
    assert verses[-1].startswith("The grace of our Lord Jesus Christ")
    assert not any(re.match(r"^[1-3]?[A-Za-z]+\d+:\d+", v) for v in verses[:2000])
    assert 780_000 < sum(len(v.split()) for v in verses) < 800_000
    assert (_kjv_cache / "kjv-verses-v1.txt").is_file()

    def boom() -> str:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(corpora_mod, "_run_bible", boom)
    assert kjv_verses() == verses


def test_austen() -> None:
    books = austen_books()
    assert list(books) == [
        "Sense & Sensibility",
        "Pride & Prejudice",
        "Mansfield Park",
        "Emma",
        "Northanger Abbey",
        "Persuasion",
    ]
    pp = books["Pride & Prejudice"]
    assert pp[0] == "PRIDE AND PREJUDICE"
    assert any(line.startswith("It is a truth universally acknowledged") for line in pp[:20])
    assert all(line for lines in books.values() for line in lines)
    assert len(austen_books(keep_blank=True)["Emma"]) == 16235
    lines = austen_lines()
    assert len(lines) == sum(len(v) for v in books.values())
    assert 700_000 < sum(len(line.split()) for line in lines) < 740_000


def test_fortunes() -> None:
    cookies = fortunes()
    assert len(cookies) > 10_000
    assert not any(c.strip() == "%" for c in cookies)


def test_missing_debian_root_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "no-debs"
    monkeypatch.setenv("ALLORNONE_DEBIAN_ROOT", str(empty))
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))
    for call, package in [
        (kjv_verses, "bible-kjv"),
        (austen_books, "r-cran-janeaustenr"),
        (antonym_pairs, "wordnet-base"),
        (fortunes, "fortunes"),
    ]:
        with pytest.raises(AllOrNoneError) as err:
            call()
        msg = str(err.value)
        assert f"'{package}'" in msg
        assert "bash scripts/install.sh" in msg
        assert f"apt-get download {package} && dpkg-deb -x {package}_*.deb {empty}" in msg


def test_unpacked_root_comes_before_system(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "usr/share/wordnet/data.adj"
    fake.parent.mkdir(parents=True)
    fake.write_text("")
    monkeypatch.setenv("ALLORNONE_DEBIAN_ROOT", str(tmp_path))
    monkeypatch.delenv("ALLORNONE_NO_SYSTEM_DEBIAN")
    assert find_debian_file("usr/share/wordnet/data.adj", "wordnet-base") == fake
    system = Path("/usr/share/wordnet/data.noun")
    if system.is_file():  # falls back to a system-wide install when there is one
        assert find_debian_file("usr/share/wordnet/data.noun", "wordnet-base") == system


# ---------------------------------------------------------------- labelled texts


def test_book_passages() -> None:
    data = book_passages(n_per_class=60, n_words=14, seed=3)
    assert len(data) == 120 and data.classes == ["austen", "kjv"]
    assert data.labels.count("kjv") == 60
    assert all(len(t.split()) == 14 for t in data.texts)
    kjv_text = " ".join(" ".join(kjv_verses()).split())
    austen_text = " ".join(" ".join(austen_lines()).split())
    for text, label, group in zip(data.texts, data.labels, data.groups):
        assert text in (kjv_text if label == "kjv" else austen_text)
        assert (group == "King James Bible") == (label == "kjv")
    again = book_passages(n_per_class=60, n_words=14, seed=3)
    assert again.texts == data.texts


def test_noun_number_contexts() -> None:
    data = noun_number_contexts(max_per_word=10, seed=1)
    assert data.labels.count("singular") == data.labels.count("plural") >= 150
    pairs = {p for a, b, c, d in analogy_questions()["gram8-plural"] for p in ((a, b), (c, d))}
    singular = {a for a, _ in pairs}
    plural = {b for _, b in pairs}
    for text, label, noun in zip(data.texts, data.labels, data.groups):
        words = text.split()
        assert words[-1] == noun and 4 <= len(words) <= 20
        assert noun in (singular if label == "singular" else plural)
    sub = noun_number_contexts(n_per_class=40, max_per_word=10, corpora=("kjv",), seed=1)
    assert len(sub) == 80 and "King James" in sub.source
    kjv_text = " ".join(" ".join(kjv_verses()).split())
    assert all(t in kjv_text for t in sub.texts)
    with pytest.raises(AllOrNoneError, match="only"):
        noun_number_contexts(n_per_class=10_000)


def test_read_labels_tsv(tmp_path: Path) -> None:
    path = _write(tmp_path, "l.tsv", "text\tlabel\n# c\nthe cat\tsg\nthe cats\tpl\n")
    data = read_labels_tsv(path)
    assert isinstance(data, LabelledTexts)
    assert data.texts == ["the cat", "the cats"] and data.classes == ["pl", "sg"]
    with pytest.raises(AllOrNoneError, match="single class"):
        read_labels_tsv(_write(tmp_path, "one.tsv", "a\tx\nb\tx\n"))
    bad = _write(tmp_path, "bad.tsv", "a\tx\nb\ty\nc\n")
    with pytest.raises(AllOrNoneError, match=re.escape(f"{bad}, line 3")):
        read_labels_tsv(bad)
    bad = _write(tmp_path, "bad2.tsv", "a\tx\n\nb\t \n")
    with pytest.raises(AllOrNoneError, match=re.escape(f"{bad}, line 3: empty label")):
        read_labels_tsv(bad)
    with pytest.raises(AllOrNoneError, match="different lengths|texts but"):
        LabelledTexts("x", ["a"], [], "")
