"""``--engine ray``: the store written over a local 2-worker Ray cluster equals the
single-process one, and a killed worker's shard is redone. Skipped when Ray is not installed
(it is the optional extra ``allornone[ray]``, not part of ``dev``)."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from test_models_hf import LEE, _bpe_tokenizer, _llama  # noqa: E402

from allornone.models import load  # noqa: E402
from allornone.models.extract import extract  # noqa: E402
from allornone.models.ray_engine import KILL_ONCE_ENV, extract_ray  # noqa: E402
from allornone.store import RepresentationStore  # noqa: E402

TEXTS = [t[:60] for t in LEE[:24]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    model_dir = root / "tiny-llama"
    _llama(512).save_pretrained(model_dir)
    _bpe_tokenizer().save_pretrained(model_dir)
    marker = root / "kill-shard-2"
    marker.write_text("the worker that gets shard 2 exits once")
    mp = pytest.MonkeyPatch()
    mp.setenv("ALLORNONE_CACHE", str(root / "cache"))
    mp.setenv(KILL_ONCE_ENV, f"2:{marker}")  # inherited by the Ray workers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield model_dir, marker, root
    finally:
        ray.shutdown()
        mp.undo()


def test_ray_store_equals_the_single_process_one_and_a_killed_shard_is_redone(setup):
    model_dir, marker, root = setup
    lm = load(str(model_dir), device="cpu")
    single = extract(lm, TEXTS, root / "single", shard_rows=6)
    res = extract_ray(str(model_dir), TEXTS, root / "ray", workers=2, shard_rows=6, lm=lm)
    assert not marker.exists()  # the worker holding shard 2 really died
    assert res.store.complete and (res.shards_written, res.shards_reused) == (4, 0)
    a = RepresentationStore.open(root / "single")
    b = RepresentationStore.open(root / "ray")
    assert a.key == b.key and b.contexts() == TEXTS
    assert float(np.abs(a.load() - b.load()).max()) <= 1e-5
    assert single.n == res.n == len(TEXTS)
    again = extract_ray(str(model_dir), TEXTS, root / "ray", workers=2, shard_rows=6, lm=lm)
    assert again.shards_written == 0 and again.shards_reused == 4
