"""Words to token ids, the way a tokenizer really encodes them in running text.

A word in the middle of a sentence is preceded by a space, and tokenizers encode that space
into the token: byte-level BPE (GPT-2, Llama-3, SmolLM2) as ``"Ġword"``, SentencePiece
(Gemma, Llama-2) as ``"▁word"``. :func:`encode_word` therefore encodes ``"the word"`` and
keeps the tokens after those of ``"the"``, which gives the running-text ids for both families
without having to know which one the tokenizer is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._validation import AllOrNoneError

__all__ = [
    "WordTokens",
    "encode_word",
    "special_layout",
    "token_labels",
    "word_tokens",
]

_PREFIX = "the"


@dataclass
class WordTokens:
    """Report of how a list of words is tokenised.

    Attributes
    ----------
    words : list of str
        The words, in the order given.
    ids : list of list of int
        Token ids of each word (running-text encoding).
    pieces : list of list of str
        The tokenizer's pieces for each word (e.g. ``["ĠBer", "lin"]``).
    single : dict
        ``word -> token id`` for the words that are exactly one token.
    multi : dict
        ``word -> pieces`` for the words split into several tokens.
    unknown : list of str
        Words the tokenizer cannot represent (map to the unknown token / not in the vocabulary).
    leading_space : bool
        Whether the words were encoded as they appear after a space.
    """

    words: list[str]
    ids: list[list[int]]
    pieces: list[list[str]]
    leading_space: bool
    single: dict[str, int] = field(default_factory=dict)
    multi: dict[str, list[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def all_single(self) -> bool:
        """True when every word is exactly one known token."""
        return not self.multi and not self.unknown

    def single_ids(self) -> list[int]:
        """Token ids of the single-token words, in the order of :attr:`words`."""
        return [self.single[w] for w in self.words if w in self.single]

    def summary(self) -> str:
        """A short human-readable report."""
        lines = [
            f"{len(self.words)} words: {len(self.single)} single-token, {len(self.multi)} "
            f"multi-token, {len(self.unknown)} unknown"
            + (" (encoded with a leading space)" if self.leading_space else "")
        ]
        for w, p in list(self.multi.items())[:20]:
            lines.append(f"  multi-token: {w!r} -> {p}")
        if len(self.multi) > 20:
            lines.append(f"  ... and {len(self.multi) - 20} more multi-token words")
        if self.unknown:
            lines.append(f"  unknown: {self.unknown[:20]}")
        return "\n".join(lines)

    __str__ = summary


def special_layout(tokenizer: Any) -> tuple[list[int], int]:
    """The special tokens a tokenizer adds around a text: ``(prefix_ids, n_suffix)``.

    E.g. ``([bos_id], 0)`` for Llama-2 / Gemma, ``([], 0)`` for GPT-2 and SmolLM2,
    ``([], 1)`` for a tokenizer that appends EOS.
    """
    text = "a b c"
    with_sp = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    plain = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    m = len(plain)
    for i in range(len(with_sp) - m + 1):
        if with_sp[i : i + m] == plain:
            return with_sp[:i], len(with_sp) - i - m
    return [], 0  # unusual template: add no specials ourselves


def _encode_plain(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_word(tokenizer: Any, word: str, leading_space: bool = True) -> list[int]:
    """Token ids of ``word`` as it appears in running text.

    With ``leading_space=True`` the word is encoded after a space (``" word"`` / ``"▁word"``);
    otherwise on its own at the start of a text (SentencePiece tokenizers that add a dummy
    prefix still give ``"▁word"`` then).
    """
    if not leading_space:
        return _encode_plain(tokenizer, word)
    ctx = _encode_plain(tokenizer, _PREFIX)
    full = _encode_plain(tokenizer, f"{_PREFIX} {word}")
    if full[: len(ctx)] == ctx and len(full) > len(ctx):
        return full[len(ctx) :]
    return _encode_plain(tokenizer, f" {word}")  # merged across the boundary: encode alone


def word_tokens(tokenizer: Any, words: Sequence[str], leading_space: bool = True) -> WordTokens:
    """Tokenise each word the running-text way and report single vs multi-token words."""
    if isinstance(words, str):
        words = [words]
    words = list(words)
    for i, w in enumerate(words):
        if not isinstance(w, str) or not w.strip():
            raise AllOrNoneError(f"words[{i}] = {w!r}: every word must be a non-empty string")
    unk = getattr(tokenizer, "unk_token_id", None)
    report = WordTokens(words=words, ids=[], pieces=[], leading_space=leading_space)
    for w in words:
        ids = encode_word(tokenizer, w, leading_space)
        pieces = list(tokenizer.convert_ids_to_tokens(ids))
        report.ids.append(ids)
        report.pieces.append(pieces)
        if not ids or (unk is not None and unk in ids):
            report.unknown.append(w)
        elif len(ids) == 1:
            report.single[w] = ids[0]
        else:
            report.multi[w] = pieces
    return report


def token_labels(tokenizer: Any, V: int) -> list[str]:
    """Unique human-readable label of each of the ``V`` token ids.

    The label is the decoded text of the token as it appears after other text, so a
    word-initial token reads ``" Berlin"`` for both byte-level BPE and SentencePiece. Labels
    that would collide (partial UTF-8 bytes, duplicates) fall back to the raw piece, then to
    ``"piece#id"``. Ids beyond the tokenizer's vocabulary (padded embedding rows) are
    labelled ``"<unused:id>"``.
    """
    n_tok = min(V, len(tokenizer))
    ref = _encode_plain(tokenizer, "a")
    ref_text = tokenizer.decode(ref, clean_up_tokenization_spaces=False)
    seqs = [ref + [i] for i in range(n_tok)]
    decoded = tokenizer.batch_decode(
        seqs, skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    labels: list[str] = []
    for i, s in enumerate(decoded):
        if s.startswith(ref_text):
            labels.append(s[len(ref_text) :])
        else:
            labels.append(tokenizer.decode([i], clean_up_tokenization_spaces=False))
    labels.extend(f"<unused:{i}>" for i in range(n_tok, V))
    counts = Counter(labels)
    if any(c > 1 for c in counts.values()) or "" in counts:
        raw = tokenizer.convert_ids_to_tokens(list(range(n_tok)))
        for i in range(n_tok):
            if counts[labels[i]] > 1 or labels[i] == "":
                labels[i] = str(raw[i])
        counts = Counter(labels)
        for i in range(V):
            if counts[labels[i]] > 1:
                labels[i] = f"{labels[i]}#{i}"
    return labels
