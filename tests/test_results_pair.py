"""results.json and arrays.safetensors are one pair: load_results never mixes two audits
(issue 25, case 3), even while another process republishes the folder in a loop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from audit_helpers import CONCEPTS, LABELS, RELATIONS, tiny_model

from allornone import AllOrNoneError
from allornone.audit import AuditConfig, AuditResults, load_results, run_audit, write_results
from allornone.audit.store import ARRAYS, ARRAYS_RECORD, RESULTS

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuditResults, AuditResults]:
    """Two audits that differ in a summary (``created``) and in a matrix."""
    cfg = AuditConfig(
        concepts=str(CONCEPTS), relations=str(RELATIONS), labels=str(LABELS), progress=False
    )
    a = run_audit(cfg, model=tiny_model())
    rel = a.of_kind("relational")[0]
    A = rel.details["strong_map_A"]
    rel_b = replace(rel, details=rel.details | {"strong_map_A": A + 1.0})
    props = tuple(rel_b if p is rel else p for p in a.properties)
    b = replace(a, created="audit B", properties=props)
    return replace(a, created="audit A"), b


def _matrix(res: AuditResults) -> np.ndarray:
    return res.of_kind("relational")[0].details["strong_map_A"]


def test_a_mixed_folder_is_refused_in_one_line(pair, tmp_path: Path) -> None:
    a, b = pair
    write_results(a, tmp_path / "a")
    write_results(b, tmp_path / "b")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(tmp_path / "a" / RESULTS, mixed / RESULTS)
    shutil.copy(tmp_path / "b" / ARRAYS, mixed / ARRAYS)
    t0 = time.monotonic()
    with pytest.raises(AllOrNoneError, match="are from two different audits") as err:
        load_results(mixed)
    assert "\n" not in str(err.value) and str(mixed) in str(err.value)
    assert time.monotonic() - t0 < 5  # a few brief retries, then the line
    # the same audit written twice is still two writes: the pair is tied to one write
    write_results(a, tmp_path / "a2")
    shutil.copy(tmp_path / "a2" / ARRAYS, mixed / ARRAYS)
    with pytest.raises(AllOrNoneError, match="two different audits"):
        load_results(mixed)
    # the matching pair loads, and the record does not leak into the results
    shutil.copy(tmp_path / "a" / ARRAYS, mixed / ARRAYS)
    back = load_results(mixed)
    assert back == a and ARRAYS_RECORD not in back.extra


def test_results_written_before_the_record_load_with_a_warning(pair, tmp_path: Path) -> None:
    a, _ = pair
    write_results(a, tmp_path)
    tree = json.loads((tmp_path / RESULTS).read_text())
    assert set(tree[ARRAYS_RECORD]) == {"sha256", "run_id"}
    del tree[ARRAYS_RECORD]
    (tmp_path / RESULTS).write_text(json.dumps(tree))
    with pytest.warns(UserWarning, match="is not checked"):
        back = load_results(tmp_path)
    assert back == a


_WRITER = textwrap.dedent(
    """
    import os, shutil, sys, time, uuid
    from pathlib import Path
    final, sources, seconds = Path(sys.argv[1]), sys.argv[2:4], float(sys.argv[4])
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        # what publishing a report does: a complete folder written beside, then swapped in
        tmp = final.with_name(f".tmp-{uuid.uuid4().hex[:8]}")
        shutil.copytree(sources[i % 2], tmp)
        trash = final.with_name(f".old-{uuid.uuid4().hex[:8]}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash)
        i += 1
    print(i)
    """
)


def test_a_reader_racing_a_republishing_writer_never_gets_a_mixed_pair(
    pair, tmp_path: Path
) -> None:
    a, b = pair
    write_results(a, tmp_path / "a")
    write_results(b, tmp_path / "b")
    final = tmp_path / "report"
    shutil.copytree(tmp_path / "a", final)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(final), str(tmp_path / "a"), str(tmp_path / "b"), "4"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = {"audit A": 0, "audit B": 0, "refused": 0}
    bad: list[str] = []

    def read() -> None:
        while writer.poll() is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # no unchecked read either
                    back = load_results(final)
            except AllOrNoneError as exc:
                if "being rewritten" not in str(exc) and "no results.json" not in str(exc):
                    bad.append(str(exc))
                seen["refused"] += 1
                continue
            want = a if back.created == "audit A" else b
            if not np.array_equal(_matrix(back), _matrix(want)):
                bad.append(f"{back.created} with the other audit's matrix")
            seen[back.created] += 1

    reader = threading.Thread(target=read)
    reader.start()
    out, _ = writer.communicate(timeout=60)
    reader.join(timeout=60)
    assert writer.returncode == 0
    assert not bad, bad[:3]
    assert int(out) > 10  # the folder really was republished many times
    assert seen["audit A"] + seen["audit B"] > 10, seen  # and the reads mostly succeed
    assert seen["audit A"] > 0 and seen["audit B"] > 0, seen
