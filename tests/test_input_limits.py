"""Oversized input files are refused at once, with the limit and the way around it."""

from __future__ import annotations

import time

import pytest

from allornone import AllOrNoneError
from allornone.data import read_labels_tsv, read_pairs_tsv


def test_a_million_line_pairs_file_is_refused_quickly(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("".join(f"w{i}\tv{i}\n" for i in range(1_000_000)))
    t0 = time.perf_counter()
    with pytest.raises(AllOrNoneError, match=r"1000000 lines.*ALLORNONE_MAX_INPUT_LINES"):
        read_pairs_tsv(p)
    assert time.perf_counter() - t0 < 5


def test_the_line_limit_can_be_raised_and_is_validated(tmp_path, monkeypatch):
    p = tmp_path / "pairs.tsv"
    p.write_text("".join(f"w{i}\tv{i}\n" for i in range(50)))
    monkeypatch.setenv("ALLORNONE_MAX_INPUT_LINES", "10")
    with pytest.raises(AllOrNoneError, match="50 lines"):
        read_pairs_tsv(p)
    monkeypatch.setenv("ALLORNONE_MAX_INPUT_LINES", "100")
    assert len(read_pairs_tsv(p)[0]) == 50
    monkeypatch.setenv("ALLORNONE_MAX_INPUT_LINES", "lots")
    with pytest.raises(AllOrNoneError, match="not an integer"):
        read_pairs_tsv(p)


def test_a_folder_or_a_huge_file_is_refused(tmp_path):
    with pytest.raises(AllOrNoneError, match="is a folder"):
        read_labels_tsv(tmp_path)
    big = tmp_path / "big.tsv"
    with open(big, "wb") as fh:
        fh.truncate(65 * 2**20)  # sparse: 65 MiB of zeros
    with pytest.raises(AllOrNoneError, match="MiB"):
        read_labels_tsv(big)
