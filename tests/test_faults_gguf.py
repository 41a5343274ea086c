"""A GGUF's declared model size is checked before anything is built (issue 25, case 6): a
1.4 MB file with no tensors and a huge header (embedding_length 16384, block_count 64) made
transformers start allocating a ~500 GB model; it is now refused in one line, under an
address-space limit that any such allocation would hit."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audit_helpers import CONCEPTS, LABELS, RELATIONS

from allornone import AllOrNoneError

SRC = Path(__file__).resolve().parents[1] / "src"


def _gguf(path: Path, *, d: int, blocks: int, ff: int, vocab: int, tensor: int = 0) -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_embedding_length(d)
    w.add_block_count(blocks)
    w.add_feed_forward_length(ff)
    w.add_head_count(8)
    w.add_token_list([f"t{i}" for i in range(vocab)])
    if tensor:
        w.add_tensor("token_embd.weight", np.zeros((tensor, d), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _limit_address_space() -> None:  # runs in the child, before it starts Python
    limit = 8 * 2**30  # torch and transformers load in this; a ~500 GB model cannot
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_a_gguf_bomb_is_refused_before_any_allocation(tmp_path: Path) -> None:
    bomb = _gguf(tmp_path / "bomb.gguf", d=16384, blocks=64, ff=53248, vocab=100_000)
    assert bomb.stat().st_size < 2_000_000
    args = [sys.executable, "-m", "allornone", "audit", "--model", str(bomb)]
    args += ["--concepts", str(CONCEPTS), "--relations", str(RELATIONS)]
    args += ["--labels", str(LABELS), "--out", str(tmp_path / "rep"), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "ALLORNONE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        args,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_address_space,
    )
    err = proc.stderr.strip()
    assert proc.returncode == 2, err[-2000:]
    assert "Traceback" not in err and "MemoryError" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"allornone: error: GGUF file {bomb} declares a model of at least ")
    assert "embedding_length 16,384, block_count 64" in last
    assert "but holds tensors for only 0: it is damaged or crafted" in last
    assert not (tmp_path / "rep").exists()


def test_a_gguf_larger_than_memory_is_refused(tmp_path: Path, monkeypatch) -> None:
    from allornone import _validation
    from allornone.models._gguf import check_gguf, declared_parameters

    ok = _gguf(tmp_path / "ok.gguf", d=16, blocks=2, ff=32, vocab=40, tensor=40)
    check_gguf(ok)  # consistent and small: accepted
    monkeypatch.setattr(_validation, "available_memory", lambda: 1000)
    params = 2 * (16 * 16 + 2 * 16 * 32) + 40 * 16
    with pytest.raises(AllOrNoneError, match=f"at least {params:,} parameters .* more than the"):
        check_gguf(ok)
    monkeypatch.setattr(_validation, "available_memory", lambda: None)  # unknown: no refusal
    check_gguf(ok)
    # sizes the metadata does not declare are not guessed
    assert declared_parameters({b"general.architecture": b"llama"}) == (0, "")
