"""The sharded representation store: checksums, resume, refusals, streamed results."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from planted import planted, same_span

import allornone as aon
from allornone.store import RepresentationStore, ShardedRows


def _write(path, F, *, shard_rows=1000, contexts=None, model="m", settings=None):
    store = RepresentationStore.create(
        path,
        model=model,
        d=F.shape[1],
        n=F.shape[0],
        contexts=contexts,
        dtype="float64" if F.dtype == np.float64 else "float32",
        settings=settings or {"pool": "last"},
        shard_rows=shard_rows,
    )
    for i in store.pending():
        lo, hi = store.shard_range(i)
        store.write_shard(i, F[lo:hi])
    return store.finish()


def test_round_trip_with_contexts_in_order(tmp_path):
    rng = np.random.default_rng(0)
    F = rng.standard_normal((2500, 7)).astype(np.float32)
    ctx = [f"context {i} ü" for i in range(2500)]
    _write(tmp_path / "s", F, contexts=ctx)
    s = RepresentationStore.open(tmp_path / "s")
    assert (s.n, s.d, s.n_shards, s.dtype) == (2500, 7, 3, np.float32) and s.complete
    np.testing.assert_array_equal(s.load(), F)
    assert s.contexts() == ctx
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert m["shards"]["2"]["rows"] == [2000, 2500] and len(m["shards"]["0"]["sha256"]) == 64


def test_sharded_rows_index_like_an_array_and_refuse_materialising(tmp_path):
    rng = np.random.default_rng(1)
    F = rng.standard_normal((2500, 4))
    X = _write(tmp_path / "s", F).rows()
    assert X.shape == (2500, 4) and len(X) == 2500
    np.testing.assert_array_equal(X[5], F[5])
    np.testing.assert_array_equal(X[-1], F[-1])
    np.testing.assert_array_equal(X[900:2100], F[900:2100])  # crosses two shard borders
    idx = np.array([2499, 0, 1000, 999, 5, 1000])
    np.testing.assert_array_equal(X[idx], F[idx])
    np.testing.assert_array_equal(X[::700], F[::700])
    ones = ShardedRows(RepresentationStore.open(tmp_path / "s"), ones=True)
    np.testing.assert_array_equal(ones[10:12], np.hstack([F[10:12], np.ones((2, 1))]))
    with pytest.raises(aon.AllOrNoneError, match="streamed from the store"):
        np.asarray(X)
    with pytest.raises(IndexError):
        X[2500]


def test_interrupted_writer_resumes_where_it_stopped(tmp_path):
    rng = np.random.default_rng(2)
    F = rng.standard_normal((3500, 5)).astype(np.float32)
    s = RepresentationStore.create(
        tmp_path / "s", model="m", n=3500, d=5, settings={"pool": "last"}, shard_rows=1000
    )
    assert s.pending() == [0, 1, 2, 3]
    for i in (0, 2):
        lo, hi = s.shard_range(i)
        s.write_shard(i, F[lo:hi])
    # a crash here: a new process reopens with the same key
    again = RepresentationStore.create(
        tmp_path / "s", model="m", n=3500, d=5, settings={"pool": "last"}, shard_rows=1000
    )
    assert again.pending() == [1, 3] and not again.complete
    with pytest.raises(aon.AllOrNoneError, match="incomplete"):
        RepresentationStore.open(tmp_path / "s")
    written = []
    for i in again.pending():
        lo, hi = again.shard_range(i)
        again.write_shard(i, F[lo:hi])
        written.append(i)
    again.finish()
    assert written == [1, 3]
    np.testing.assert_array_equal(RepresentationStore.open(tmp_path / "s").load(), F)


def test_truncated_shard_is_detected_and_redone(tmp_path):
    rng = np.random.default_rng(3)
    F = rng.standard_normal((2500, 6)).astype(np.float32)
    _write(tmp_path / "s", F)
    shard = tmp_path / "s" / "F-00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-40])
    s = RepresentationStore.open(tmp_path / "s")
    with pytest.raises(aon.AllOrNoneError, match="F-00001.safetensors fails its sha256"):
        s.load()
    w = RepresentationStore.create(
        tmp_path / "s", model="m", n=2500, d=6, settings={"pool": "last"}, shard_rows=1000
    )
    assert w.pending() == [1] and not w.complete
    w.write_shard(1, F[1000:2000])
    w.finish()
    np.testing.assert_array_equal(RepresentationStore.open(tmp_path / "s").load(), F)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": "other"}, "another model"),
        ({"contexts": ["x", "y"], "n": None}, "another contexts"),
        ({"settings": {"pool": "mean"}}, "setting pool='last'"),
        ({"settings": {"pool": "last", "max_length": 64}}, "setting max_length=None"),
        ({"d": 7}, "d=6"),
        ({"dtype": "float64"}, "dtype='float32'"),
    ],
)
def test_store_for_another_key_is_refused_naming_the_field(tmp_path, change, field):
    kw = {"model": "m", "n": 2, "d": 6, "settings": {"pool": "last"}, "dtype": "float32"}
    RepresentationStore.create(tmp_path / "s", **kw)
    with pytest.raises(aon.AllOrNoneError, match="use another folder") as exc:
        RepresentationStore.create(tmp_path / "s", **{**kw, **change})
    assert field in str(exc.value)


def test_bad_folders_and_manifests_are_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(aon.AllOrNoneError, match="not an allornone store"):
        RepresentationStore.create(tmp_path / "notes", model="m", n=3, d=2)
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    with pytest.raises(aon.AllOrNoneError, match="no manifest.json"):
        RepresentationStore.open(tmp_path / "notes")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(aon.AllOrNoneError, match="not valid JSON"):
        RepresentationStore.open(tmp_path / "bad")
    s = RepresentationStore.create(tmp_path / "s", model="m", n=3, d=2)
    with pytest.raises(aon.AllOrNoneError, match=r"shard 0 must have shape \(3, 2\)"):
        s.write_shard(0, np.zeros((2, 2)))
    with pytest.raises(aon.AllOrNoneError, match="finite"):
        s.write_shard(0, np.full((3, 2), np.nan))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [False, True])
def test_streamed_structure_and_equivalence_equal_the_in_memory_ones(tmp_path, dtype, bias):
    """n = 9,000 contexts in 9 shards (row blocks of 4,096 cross shard borders): the streamed
    structure and equivalence equal the in-memory ones to float64 rounding."""
    rng = np.random.default_rng(4)
    model, _ = planted(rng, n=9000, V=300, d=12, k=5, jf=2, jg=3)
    F, G = model.F.astype(dtype), model.G.astype(dtype)
    b = rng.standard_normal(300).astype(dtype) if bias else None
    store = _write(tmp_path / "s", F, contexts=[f"c{i}" for i in range(9000)])
    mem = aon.NextTokenPredictor(F, G, bias=b, contexts=store.contexts())
    streamed = store.predictor(G, bias=b)
    assert isinstance(streamed.F, ShardedRows) and streamed.n == 9000
    assert streamed.d == mem.d and streamed.contexts == mem.contexts
    sm, ss = aon.structure(mem), aon.structure(streamed)
    assert sm.k == ss.k == 5 + bias and ss.dim_J_f == sm.dim_J_f
    np.testing.assert_allclose(ss.singular_values, sm.singular_values, rtol=1e-10, atol=1e-12)
    assert same_span(ss.E, sm.E, 1e-8) and same_span(ss.M, sm.M, 1e-8)
    np.testing.assert_allclose(ss.e_f, sm.e_f, rtol=1e-8, atol=1e-9)
    other = aon.NextTokenPredictor(F @ np.eye(12, dtype=dtype) * 2, G / 2, bias=b)
    em = aon.equivalence(mem, other, max_rows=50)
    es = aon.equivalence(streamed, other, max_rows=50)
    assert em.equivalent and es.equivalent
    for name in ("residual_f", "residual_g", "max_logodds_gap", "mean_kl"):
        assert getattr(es, name) == pytest.approx(getattr(em, name), rel=1e-6, abs=1e-12)
    np.testing.assert_allclose(streamed.log_odds(rows=[3, 8999]), mem.log_odds(rows=[3, 8999]))
    sub = streamed.subset(rows=[1, 2, 3])  # a row subset of a store is in memory
    assert isinstance(sub.F, np.ndarray) and sub.n == 3


def test_streamed_structure_memory_is_a_few_shards_not_n_x_d(tmp_path):
    rng = np.random.default_rng(5)
    n, d = 200_000, 32
    store = RepresentationStore.create(tmp_path / "s", model="m", n=n, d=d, shard_rows=8192)
    for i in store.pending():
        lo, hi = store.shard_range(i)
        store.write_shard(i, rng.standard_normal((hi - lo, d), dtype=np.float32))
    store.finish()
    G = rng.standard_normal((500, d)).astype(np.float32)
    tracemalloc.start()
    try:
        st = aon.structure(store.predictor(G, labels=False))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert st.k == d
    assert peak < 0.2 * n * d * 4, f"peak {peak / 2**20:.1f} MiB"
