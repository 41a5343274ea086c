"""results.json + arrays.safetensors: the round trip through load_results and its refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from audit_helpers import CONCEPTS, LABELS, RELATIONS, tiny_model

from allornone import AllOrNoneError
from allornone.audit import (
    AuditConfig,
    AuditResults,
    PropertyRecord,
    load_results,
    run_audit,
    write_report,
    write_results,
)
from allornone.audit.results import MAX_INLINE, normalise
from allornone.audit.store import ARRAYS, RESULTS, split_arrays


@pytest.fixture(scope="module")
def res() -> AuditResults:
    cfg = AuditConfig(
        concepts=str(CONCEPTS), relations=str(RELATIONS), labels=str(LABELS), progress=False
    )
    return run_audit(cfg, model=tiny_model())


@pytest.fixture()
def folder(res: AuditResults, tmp_path: Path) -> Path:
    write_results(res, tmp_path)
    return tmp_path


def test_round_trip_is_equal(res: AuditResults, folder: Path) -> None:
    back = load_results(folder)
    assert isinstance(back, AuditResults)
    assert back == res
    assert back.structure.k == res.structure.k and back.model.name == "tiny"
    rel = back.of_kind("relational")[0]
    A = rel.details["strong_map_A"]
    assert isinstance(A, np.ndarray) and A.ndim == 2
    np.testing.assert_array_equal(A, res.of_kind("relational")[0].details["strong_map_A"])
    # a changed number makes the objects differ (the equality can fail)
    other = replace(back, structure=replace(back.structure, k=back.structure.k + 1))
    assert other != res
    A2 = A.copy()
    A2[0, 0] += 1e-12
    rel2 = replace(rel, details=rel.details | {"strong_map_A": A2})
    assert rel2 != res.of_kind("relational")[0]


def test_json_holds_references_not_matrices(res: AuditResults, folder: Path) -> None:
    text = (folder / RESULTS).read_text()
    tree = json.loads(text)
    rel = next(p for p in tree["properties"] if p["property"] == "relational")
    ref = rel["details"]["strong_map_A"]
    assert ref == {"$array": f"properties/relational/{rel['name']}/details/strong_map_A"}

    def longest(x: object) -> int:  # longest numeric list left in the JSON
        if isinstance(x, dict):
            return max((longest(v) for v in x.values()), default=0)
        if isinstance(x, list):
            inner = max((longest(v) for v in x), default=0)
            flat = all(isinstance(v, (int, float)) or v is None for v in x)
            return max(inner, len(x) if flat else 0)
        return 0

    assert longest(tree) <= MAX_INLINE
    from safetensors.numpy import load_file

    assert ref["$array"] in load_file(str(folder / ARRAYS))


def test_report_folder_loads(res: AuditResults, tmp_path: Path) -> None:
    files = write_report(res, tmp_path)
    assert files["arrays"] == ARRAYS and (tmp_path / ARRAYS).stat().st_size > 0
    back = load_results(tmp_path)
    assert back.figures["spectrum"] == "figures/spectrum.png"
    assert back == replace(res, figures=back.figures)


def test_normalise_rule() -> None:
    out = normalise(
        {
            "short": list(range(MAX_INLINE)),
            "long": [0.5] * (MAX_INLINE + 1),
            "matrix": [[1.0, 2.0], [3.0, 4.0]],
            "words": ["a", "b"],
            "nan": np.array([1.0, np.nan]),
        }
    )
    assert isinstance(out["short"], list) and isinstance(out["long"], np.ndarray)
    assert isinstance(out["matrix"], np.ndarray) and out["matrix"].shape == (2, 2)
    assert out["words"] == ["a", "b"] and out["nan"] == [1.0, None]
    tree, arrays = split_arrays({"a": [{"name": "x/y", "m": out["matrix"]}]})
    assert tree == {"a": [{"name": "x/y", "m": {"$array": "a/x_y/m"}}]}
    assert set(arrays) == {"a/x_y/m"}


def test_refuses_folder_without_results(tmp_path: Path) -> None:
    with pytest.raises(AllOrNoneError, match="no results.json"):
        load_results(tmp_path)


def test_refuses_other_schema_version(folder: Path) -> None:
    tree = json.loads((folder / RESULTS).read_text())
    tree["schema_version"] = "1.0"
    (folder / RESULTS).write_text(json.dumps(tree))
    with pytest.raises(AllOrNoneError, match=r"schema 1\.0; this allornone reads schema 2\.x"):
        load_results(folder)


def test_refuses_missing_arrays(folder: Path) -> None:
    (folder / ARRAYS).unlink()
    with pytest.raises(AllOrNoneError, match="arrays.safetensors: missing"):
        load_results(folder)


def test_refuses_truncated_arrays(folder: Path) -> None:
    data = (folder / ARRAYS).read_bytes()
    (folder / ARRAYS).write_bytes(data[: len(data) // 2])
    with pytest.raises(AllOrNoneError, match="truncated"):
        load_results(folder)


def test_refuses_reference_to_missing_key(folder: Path) -> None:
    tree = json.loads((folder / RESULTS).read_text())
    tree["structure"]["singular_values"] = {"$array": "no/such/key"}
    (folder / RESULTS).write_text(json.dumps(tree))
    with pytest.raises(AllOrNoneError, match="no array 'no/such/key'"):
        load_results(folder)


def test_write_report_wants_typed_results(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="expected AuditResults"):
        write_report({"schema_version": "2.0"}, tmp_path)  # type: ignore[arg-type]


def test_user_strings_are_escaped_in_markdown(res: AuditResults, tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    p0 = res.properties[0]
    props = (replace(p0, name=evil),) + res.properties[1:]
    assert isinstance(props[0], PropertyRecord)
    write_report(replace(res, properties=props), tmp_path)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert "<script>alert" not in md and "&lt;script>alert(1)&lt;/script>" in md
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html


def test_refuses_compare_results(tmp_path: Path) -> None:
    (tmp_path / RESULTS).write_text(json.dumps({"schema_version": "1.0", "kind": "compare"}))
    with pytest.raises(AllOrNoneError, match="kind 'compare'"):
        load_results(tmp_path)
