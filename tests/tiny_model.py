"""A tiny deterministic stand-in for :class:`allornone.models.LanguageModel` (audit tests).

Vocabulary: a fixed list of words (as " word" tokens) plus filler tokens; ``f(x)`` is a fixed
random non-linear function of the words of ``x``; ``G`` is random with a little planted
structure (pair offsets), so the whole audit runs in seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _WT:
    single: dict[str, int] = field(default_factory=dict)


def _vec(word: str, d: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(d)


class TinyModel:
    def __init__(self, words: list[str], d: int = 24, n_filler: int = 40, name: str = "tiny"):
        self.name = name
        words = list(dict.fromkeys(words))
        self.tokens = [f" {w}" for w in words] + [f"<f{i}>" for i in range(n_filler)]
        self._index = {w: i for i, w in enumerate(words)}
        self.d = d
        self.V = len(self.tokens)
        self.logit_check = 0.0
        self.head_notes = ["tiny test model"]
        self.tied = False
        G = np.stack([_vec("g:" + t, d) for t in self.tokens])
        self._G = G
        self._W = np.random.default_rng(1).standard_normal((d, d)) / np.sqrt(d)
        self.embed_calls = 0

    def word_tokens(self, words):
        return _WT({w: self._index[w] for w in words if w in self._index})

    def embed(self, texts, batch_size=None, progress=None):
        self.embed_calls += 1
        out = np.zeros((len(texts), self.d))
        for i, t in enumerate(texts):
            ws = t.replace(",", " ").replace("'s", " ").split()
            h = sum(
                (0.7 ** (len(ws) - j)) * _vec("f:" + w.lower(), self.d) for j, w in enumerate(ws)
            )
            out[i] = np.tanh(self._W @ h)
        return out

    def unembedding(self):
        return self._G
