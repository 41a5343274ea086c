"""word2vec (skip-gram / CBOW with negative sampling) as a log-bilinear next-token predictor.

A gensim ``Word2Vec`` model trained with negative sampling has input vectors
``f(w) = model.wv.vectors[w]`` and output vectors ``g(c) = model.syn1neg[c]``; the
distribution it approximates (and the one gensim's ``predict_output_word`` reports for a
single context word) is ``p(c | w) = softmax_c(f(w)^T g(c))`` over the vocabulary. That is
exactly the model class of THEORY.md 1, with contexts = single words and tokens = the
vocabulary. Negative sampling fits it only approximately (an implicit PMI factorisation); the
adapter describes the softmax model the vectors define.

Hierarchical-softmax models (``negative=0``) are refused: their distribution is a product of
binary decisions along a Huffman tree, not ``softmax(f^T g)``.
"""

from __future__ import annotations

import hashlib
import re
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import AllOrNoneError
from ..predictor import NextTokenPredictor
from .tokens import WordTokens

__all__ = ["Word2VecModel", "corpus_lines", "stable_hash", "tokenize", "train_word2vec"]

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def stable_hash(s: str) -> int:
    """Process-independent string hash for gensim's vector seeding (``hashfxn``).

    Python's ``hash`` of a str changes between processes (PYTHONHASHSEED), which makes gensim
    training irreproducible even with ``seed`` and ``workers=1``.
    """
    return int.from_bytes(hashlib.md5(s.encode("utf-8")).digest()[:4], "little")


def tokenize(text: str) -> list[str]:
    """Lower-cased words (letters and inner apostrophes) of a line of prose."""
    return _WORD.findall(text.lower())


class Word2VecModel:
    """A negative-sampling word2vec model seen as a next-token predictor.

    ``embed(words)`` gives ``f`` of context words (input vectors), ``unembedding()`` the
    output vectors ``syn1neg``; tokens are the vocabulary words (gensim's frequency order).

    Attributes
    ----------
    w2v : gensim.models.Word2Vec
    name : str
    d, V : int
    tokens : list of str (length V)
    tokenizer, hf_model : None
    head_notes, head_warnings : list of str
    logit_check : float
        Max abs deviation between ``log softmax(F G^T)`` and gensim's own
        ``predict_output_word`` probabilities (log scale) on a few frequent words.
    """

    tokenizer = None
    hf_model = None

    def __init__(self, w2v: Any, *, name: str | None = None, check: bool = True) -> None:
        neg = int(getattr(w2v, "negative", 0) or 0)
        syn1neg = getattr(w2v, "syn1neg", None)
        if neg <= 0 or syn1neg is None:
            raise AllOrNoneError(
                "this Word2Vec model was trained with hierarchical softmax (negative=0): its "
                "output distribution is a product of binary decisions along a Huffman tree, not "
                "softmax(f^T g), and it has no output vectors syn1neg. Train with negative>0 "
                "(e.g. Word2Vec(sg=1, hs=0, negative=5)) or use train_word2vec()"
            )
        if syn1neg.shape != w2v.wv.vectors.shape:
            raise AllOrNoneError(
                f"syn1neg has shape {syn1neg.shape} but wv.vectors has {w2v.wv.vectors.shape}: "
                "the model looks truncated or not trained"
            )
        self.w2v = w2v
        self.name = name or f"word2vec(sg={int(w2v.sg)}, d={w2v.vector_size})"
        self.head_notes = [
            "word2vec: f = input vectors (wv.vectors), g = output vectors (syn1neg)",
            "contexts are single words; p(c|w) = softmax_c(f(w)^T g(c)) over the vocabulary",
        ]
        self.head_warnings: list[str] = []
        if int(getattr(w2v, "hs", 0) or 0):
            self.head_warnings.append(
                "model was trained with both hierarchical softmax and negative sampling; the "
                "predictor uses only the negative-sampling output vectors"
            )
        if not int(w2v.sg):
            self.head_notes.append("CBOW model: f(w) is the hidden layer for a 1-word window")
        self.logit_check: float | None = self.check_logits() if check else None

    # ------------------------------------------------------------------ facts
    @property
    def d(self) -> int:
        return int(self.w2v.wv.vectors.shape[1])

    @property
    def V(self) -> int:
        return int(self.w2v.wv.vectors.shape[0])

    @property
    def tokens(self) -> list[str]:
        return list(self.w2v.wv.index_to_key)

    def __repr__(self) -> str:
        return f"Word2VecModel({self.name!r}, d={self.d}, V={self.V})"

    def save(self, folder: str | Path) -> Path:
        """Save to a folder in allornone's pickle-free word2vec format (JSON + safetensors;
        see :mod:`allornone.models.w2v_format`); ``load(folder)`` reads it back."""
        from .w2v_format import save_word2vec

        return save_word2vec(self.w2v, folder, name=self.name)

    # ------------------------------------------------------------------ words
    def _ids(self, words: Sequence[str] | str, what: str = "words") -> list[int]:
        if isinstance(words, str):
            words = [words]
        words = list(words)
        if not words:
            raise AllOrNoneError(f"{what} is empty: pass at least one word")
        k2i = self.w2v.wv.key_to_index
        out = []
        for i, w in enumerate(words):
            if not isinstance(w, str) or w == "":
                raise AllOrNoneError(f"{what}[{i}] = {w!r}: expected a non-empty word")
            if w not in k2i:
                hint = " (the vocabulary is lower-case)" if w.lower() in k2i else ""
                raise AllOrNoneError(
                    f"{what}[{i}] = {w!r} is not in the vocabulary of {self.name}{hint}"
                )
            out.append(k2i[w])
        return out

    def word_tokens(self, words: Sequence[str] | str, leading_space: bool = True) -> WordTokens:
        """Report which words are in the vocabulary (``leading_space`` is ignored)."""
        words = [words] if isinstance(words, str) else list(words)
        k2i = self.w2v.wv.key_to_index
        rep = WordTokens(words=words, ids=[], pieces=[], leading_space=False)
        for w in words:
            if w in k2i:
                rep.ids.append([k2i[w]])
                rep.pieces.append([w])
                rep.single[w] = k2i[w]
            else:
                rep.ids.append([])
                rep.pieces.append([])
                rep.unknown.append(w)
        return rep

    def token_id(self, word: str, leading_space: bool = True) -> int:
        """Vocabulary index of ``word``; raises for unknown words."""
        return self._ids([word], "word")[0]

    # ------------------------------------------------------------------ factors
    def embed(self, words: Sequence[str] | str, **_: Any) -> np.ndarray:
        """Input vectors ``f(w)`` of the context words, shape (n, d), float32 (a copy)."""
        return np.array(self.w2v.wv.vectors[self._ids(words)], dtype=np.float32)

    def unembedding(self) -> np.ndarray:
        """Output vectors ``syn1neg``, shape (V, d), float32, read-only view."""
        G = self.w2v.syn1neg.view()
        G.flags.writeable = False
        return G

    def predictor(self, words: Sequence[str] | str, **_: Any) -> NextTokenPredictor:
        """A :class:`~allornone.NextTokenPredictor` on these context words and the vocabulary."""
        words = [words] if isinstance(words, str) else list(words)
        return NextTokenPredictor(
            self.embed(words), self.unembedding(), contexts=words, tokens=self.tokens
        )

    def logprobs(self, words: Sequence[str] | str, **_: Any) -> np.ndarray:
        """``log p(c | w) = log softmax_c(f(w)^T g(c))``, shape (n, V), float64."""
        from scipy.special import log_softmax

        F = self.embed(words).astype(np.float64)
        return log_softmax(F @ self.unembedding().astype(np.float64).T, axis=1)

    def continuation_logprob(
        self, contexts: Sequence[str] | str, continuations: Sequence[str] | str, **_: Any
    ) -> np.ndarray:
        """``log p(c | w)`` for single-word contexts and continuations, shape (n,)."""
        ids = self._ids(contexts, "contexts")
        conts = [continuations] * len(ids) if isinstance(continuations, str) else continuations
        cids = self._ids(conts, "continuations")
        if len(cids) != len(ids):
            raise AllOrNoneError(
                f"continuations has {len(cids)} entries but contexts has {len(ids)}"
            )
        lp = self.logprobs([self.tokens[i] for i in ids])
        return lp[np.arange(len(ids)), cids]

    def check_logits(self, contexts: Sequence[str] | None = None) -> float:
        """Max |log softmax(F G^T) - log p_gensim| over the top-10 predictions of gensim's
        ``predict_output_word`` for a few context words (default: the 3 most frequent)."""
        words = list(contexts) if contexts is not None else self.tokens[: min(3, self.V)]
        lp = self.logprobs(words)
        dev = 0.0
        k2i = self.w2v.wv.key_to_index
        for row, w in enumerate(words):
            got = self.w2v.predict_output_word([w], topn=10) or []
            for c, p in got:
                dev = max(dev, abs(float(np.log(p)) - float(lp[row, k2i[c]])))
        self.logit_check = dev
        return dev


def corpus_lines(corpus: str) -> list[str]:
    lines: list[str] = []
    for part in corpus.lower().split("+"):
        part = part.strip()
        if part == "kjv":
            from ..data.corpora import kjv_verses

            lines += kjv_verses()
        elif part == "austen":
            from ..data.corpora import austen_lines

            lines += austen_lines()
        elif part == "fortunes":
            from ..data.corpora import fortunes

            lines += fortunes()
        elif part == "lee":
            from gensim.test.utils import datapath

            with open(datapath("lee_background.cor"), encoding="utf-8") as fh:
                lines += fh.read().splitlines()
        else:
            raise AllOrNoneError(
                f"unknown corpus {part!r} in corpus={corpus!r}: use names from "
                "kjv, austen, fortunes, lee joined with '+', or pass a list of texts"
            )
    return lines


def train_word2vec(
    corpus: str | Iterable[str] | Iterable[Sequence[str]] = "kjv+austen",
    vector_size: int = 100,
    seed: int = 0,
    *,
    window: int = 5,
    min_count: int = 5,
    epochs: int = 5,
    negative: int = 5,
    sg: int = 1,
    workers: int = 1,
    **w2v_options: Any,
) -> Word2VecModel:
    """Train a skip-gram negative-sampling word2vec model on real prose.

    Parameters
    ----------
    corpus : str or iterable
        ``"kjv"``, ``"austen"``, ``"fortunes"``, ``"lee"`` (gensim's bundled Lee corpus) or
        several joined with ``+``; or an iterable of texts (tokenised with :func:`tokenize`) or
        of token lists.
    vector_size, seed, window, min_count, epochs, negative, sg : gensim options.
    workers : int
        1 (default) makes training bit-for-bit reproducible for a given ``seed`` (with the
        process-independent :func:`stable_hash`); more workers are faster but not.

    KJV + Austen is ~1.5 M words: about 20 s on one CPU core with the defaults. The result
    has ``train_seconds`` (wall) and ``train_cpu_seconds`` attributes.
    """
    from gensim.models import Word2Vec

    if negative <= 0:
        raise AllOrNoneError("negative must be > 0: hierarchical softmax is not log-bilinear")
    texts = corpus_lines(corpus) if isinstance(corpus, str) else list(corpus)
    sentences = [tokenize(t) if isinstance(t, str) else list(t) for t in texts]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise AllOrNoneError("the corpus is empty after tokenisation")
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = Word2Vec(
            sentences=sentences,
            vector_size=vector_size,
            window=window,
            min_count=min_count,
            sg=sg,
            hs=0,
            negative=negative,
            epochs=epochs,
            seed=seed,
            workers=workers,
            hashfxn=stable_hash,
            **w2v_options,
        )
    name = corpus if isinstance(corpus, str) else "custom corpus"
    out = Word2VecModel(model, name=f"word2vec-sgns({name}, d={vector_size}, seed={seed})")
    out.train_seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
    out.train_cpu_seconds = time.process_time() - c0  # type: ignore[attr-defined]
    out.n_words = sum(len(s) for s in sentences)  # type: ignore[attr-defined]
    return out
