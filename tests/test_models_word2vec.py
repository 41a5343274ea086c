"""word2vec (SGNS) as a log-bilinear predictor: f = wv.vectors, g = syn1neg."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import Word2Vec
from gensim.test.utils import datapath

from allornone import AllOrNoneError, NextTokenPredictor
from allornone.models import Word2VecModel, load, train_word2vec
from allornone.models.word2vec import stable_hash, tokenize


@pytest.fixture(scope="module")
def lee() -> Word2VecModel:
    return train_word2vec("lee", vector_size=24, epochs=3, min_count=3)


def test_factors_are_input_and_output_vectors(lee):
    w2v = lee.w2v
    words = ["government", "fire", "police"]
    F = lee.embed(words)
    G = lee.unembedding()
    np.testing.assert_array_equal(F, w2v.wv.vectors[[w2v.wv.key_to_index[w] for w in words]])
    assert G is not w2v.syn1neg and np.shares_memory(G, w2v.syn1neg)
    assert not G.flags.writeable
    assert (lee.d, lee.V) == (24, len(w2v.wv)) and lee.tokens[0] == w2v.wv.index_to_key[0]
    assert lee.hf_model is None and lee.tokenizer is None
    pred = lee.predictor(words)
    assert isinstance(pred, NextTokenPredictor) and pred.contexts == words
    np.testing.assert_allclose(pred.logits(), F.astype(np.float64) @ G.astype(np.float64).T)
    np.testing.assert_allclose(pred.log_probs(), lee.logprobs(words), atol=1e-10)


def test_softmax_matches_gensims_own_prediction(lee):
    """gensim's predict_output_word is softmax(f . syn1neg) for one context word."""
    assert lee.logit_check is not None and lee.logit_check < 1e-4
    lp = lee.logprobs(["fire"])[0]
    top = lee.w2v.predict_output_word(["fire"], topn=5)
    for word, p in top:
        assert lp[lee.token_id(word)] == pytest.approx(np.log(p), abs=1e-4)
    assert lee.continuation_logprob(["fire"], [top[0][0]])[0] == pytest.approx(
        np.log(top[0][1]), abs=1e-4
    )


def test_load_accepts_objects_and_paths(lee, tmp_path):
    assert isinstance(load(lee.w2v), Word2VecModel)
    path = lee.save(tmp_path / "lee-w2v")  # pickle-free folder (JSON + safetensors)
    again = load(str(path))
    assert isinstance(again, Word2VecModel)
    np.testing.assert_array_equal(again.embed(["fire"]), lee.embed(["fire"]))
    np.testing.assert_array_equal(again.unembedding(), lee.unembedding())
    with pytest.raises(AllOrNoneError, match="do not apply"):
        load(lee.w2v, dtype="bfloat16")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model")
    with pytest.raises(AllOrNoneError, match="not a model file allornone reads"):
        load(str(junk))


def test_hierarchical_softmax_is_refused():
    sents = [tokenize(line) for line in open(datapath("lee_background.cor"), encoding="utf-8")]
    hs = Word2Vec(sents[:50], vector_size=8, hs=1, negative=0, min_count=2, epochs=1, workers=1)
    with pytest.raises(AllOrNoneError, match="hierarchical softmax"):
        load(hs)
    with pytest.raises(AllOrNoneError, match="negative must be > 0"):
        train_word2vec("lee", negative=0)


def test_unknown_words_and_bad_corpus(lee):
    with pytest.raises(AllOrNoneError, match=r"words\[1\] = 'zzzqx' is not in the vocabulary"):
        lee.embed(["fire", "zzzqx"])
    with pytest.raises(AllOrNoneError, match="lower-case"):
        lee.token_id("Fire")
    rep = lee.word_tokens(["fire", "zzzqx"])
    assert rep.single == {"fire": lee.token_id("fire")} and rep.unknown == ["zzzqx"]
    with pytest.raises(AllOrNoneError, match="unknown corpus 'klingon'"):
        train_word2vec("lee+klingon")


def test_training_is_reproducible():
    a = train_word2vec("lee", vector_size=16, epochs=1, min_count=5, seed=3)
    b = train_word2vec("lee", vector_size=16, epochs=1, min_count=5, seed=3)
    c = train_word2vec("lee", vector_size=16, epochs=1, min_count=5, seed=4)
    np.testing.assert_array_equal(a.unembedding(), b.unembedding())
    np.testing.assert_array_equal(a.embed(a.tokens[:50]), b.embed(b.tokens[:50]))
    assert not np.array_equal(a.embed(a.tokens[:50]), c.embed(c.tokens[:50]))
    assert stable_hash("king") == stable_hash("king") != stable_hash("queen")


def test_train_on_real_prose_under_a_minute():
    """KJV + Austen (1.5 M words) with the defaults: < 60 s of CPU, and it learns king:queen.

    CPU time, not wall time: on a shared 2-core machine the wall time depends on the load."""
    from allornone.data.corpora import kjv_verses

    try:
        kjv_verses()
    except Exception as exc:  # the Debian corpora are not unpacked on this machine
        pytest.skip(f"KJV corpus unavailable: {exc}")
    m = train_word2vec()
    assert m.train_cpu_seconds < 60
    assert m.n_words > 1_000_000 and m.V > 8000 and m.d == 100
    top = [w for w, _ in m.w2v.wv.most_similar(positive=["king", "woman"], negative=["man"])]
    assert "queen" in top[:3]
