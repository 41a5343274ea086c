"""Every cache is optional (issue 25, cases 4b and 5): a cache that cannot be written (not a
folder, read-only, full) is skipped with one warning naming the path and the reason, and the
run goes on with what it computed; a full disk under an atomic write names the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from allornone.models import load

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def tok():
    from test_models_hf import _bpe_tokenizer

    return _bpe_tokenizer()


def test_an_unwritable_embeddings_cache_is_skipped_with_one_warning(tok, tmp_path, monkeypatch):
    from test_models_hf import CONTEXTS, _llama

    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ALLORNONE_CACHE", str(blocker))
    lm = load(_llama(len(tok)), tokenizer=tok)
    fresh, fresh3 = lm.embed(CONTEXTS, cache=False), lm.embed(CONTEXTS[:3], cache=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        F1 = lm.embed(CONTEXTS)
        F2 = lm.embed(CONTEXTS[:3])  # a second write to the same cache: no second warning
    np.testing.assert_array_equal(F1, fresh)
    np.testing.assert_array_equal(F2, fresh3)
    msgs = [str(w.message) for w in seen if "cache" in str(w.message)]
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith(f"cache not written: {blocker}{os.sep}embeddings")
    assert "Not a directory; going on without caching it" in msgs[0]
    assert blocker.read_text() == "not a folder"


def test_an_audit_with_an_unwritable_cache_writes_its_report(tok, tmp_path, monkeypatch):
    """The reported case: the model ran, then writing the embeddings cache failed the audit."""
    from audit_helpers import CONCEPTS, LABELS, RELATIONS
    from test_models_hf import _llama

    from allornone.cli import main

    folder = tmp_path / "model"
    _llama(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ALLORNONE_CACHE", str(blocker))
    out = tmp_path / "rep"
    args = ["audit", "--model", str(folder), "--concepts", str(CONCEPTS), "--quick"]
    args += ["--relations", str(RELATIONS), "--labels", str(LABELS), "--out", str(out)]
    with pytest.warns(UserWarning, match="cache not written: .*: Not a directory; going on"):
        assert main([*args, "--no-progress"]) == 0
    assert (out / "report.md").is_file() and (out / "results.json").is_file()


_FULL_DISK = textwrap.dedent(
    """
    import json, resource, signal, sys, warnings
    from pathlib import Path
    import numpy as np
    from allornone._io import atomic_write_text, write_cache_text
    from allornone.models import cache
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
    out = {}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out["saved"] = str(cache.save_embeddings("k" * 64, np.ones((500, 100)), {"m": "x"}))
        out["text_cache"] = write_cache_text(Path(sys.argv[1]) / "kjv.txt", "v" * 100000)
    out["warnings"] = [str(w.message) for w in seen]
    try:
        atomic_write_text(Path(sys.argv[1]) / "report.md", "r" * 100000)
    except OSError as exc:
        out["error"] = [exc.filename, exc.strerror]
    print(json.dumps(out))
    """
)


def test_a_full_cache_disk_is_skipped_and_a_full_disk_names_the_file(tmp_path):
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(SRC), "ALLORNONE_CACHE": str(cache_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["saved"] == "None" and out["text_cache"] is False
    emb = cache_dir / "embeddings" / ("k" * 64 + ".safetensors")
    assert out["warnings"] == [
        f"cache not written: {emb}: File too large; going on without caching it (set "
        "ALLORNONE_CACHE to a writable folder to keep the cache)",
        f"cache not written: {tmp_path / 'kjv.txt'}: File too large; going on without caching "
        "it (set ALLORNONE_CACHE to a writable folder to keep the cache)",
    ]
    # nothing half-written is left: no data file, no manifest, no temporary files
    assert list((cache_dir / "embeddings").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    # an atomic write that is not a cache still fails, and now says where
    assert out["error"] == [str(tmp_path / "report.md"), "File too large"]


_FULL_MODEL_CACHE = r"""
import json, resource, signal, sys, warnings
from pathlib import Path
sys.path[:0] = [sys.argv[2]]
import test_faults_models as T
from test_models_hf import CONTEXTS, _bpe_tokenizer, tiny_gguf
from allornone.models import load


class MP:
    def setattr(self, obj, name, value):
        setattr(obj, name, value)


T._mock_gguf_conversion(_bpe_tokenizer(), MP())  # transformers' conversion: a tiny Llama
gguf = tiny_gguf(Path(sys.argv[1]))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    lm = load(str(gguf))
    F = lm.embed(CONTEXTS[:2])
print(json.dumps({"shape": list(F.shape), "warnings": [str(w.message) for w in seen]}))
"""


def test_a_full_disk_under_the_model_cache_still_runs_the_model(tmp_path):
    cache_dir = tmp_path / "cache"
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": str(SRC), "ALLORNONE_CACHE": str(cache_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_MODEL_CACHE, str(tmp_path / "toy.gguf"), tests],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shape"][0] == 2
    skipped = [w for w in out["warnings"] if w.startswith("cache not written: ")]
    assert len(skipped) == 1, out["warnings"]
    assert skipped[0].startswith(f"cache not written: {cache_dir / 'models'}")
    assert ": File too large; going on without caching it" in skipped[0]
    # the half-written model folder was removed: nothing is left to be trusted later
    assert [p.name for p in (cache_dir / "models").iterdir()] == []
