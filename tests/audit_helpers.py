"""Shared fixtures for the audit tests: a tiny model and user files (runs in seconds)."""

from __future__ import annotations

from pathlib import Path

from tiny_model import TinyModel

from allornone.data import read_pairs_tsv, read_relations_json

DATA = Path(__file__).parent / "audit_data"
CONCEPTS = DATA / "concepts.tsv"
RELATIONS = DATA / "relations.json"
LABELS = DATA / "labels.tsv"


def tiny_model(d: int = 24) -> TinyModel:
    words: set[str] = set()
    for f in read_pairs_tsv(CONCEPTS):
        for p in f.pairs:
            words |= set(p)
    for r in read_relations_json(RELATIONS):
        for s, o in r.samples:
            words |= {s, o}
    return TinyModel(sorted(words), d=d)


def tiny_args(out: Path) -> list[str]:
    return [
        "audit",
        "--model",
        "tiny",
        "--concepts",
        str(CONCEPTS),
        "--relations",
        str(RELATIONS),
        "--labels",
        str(LABELS),
        "--out",
        str(out),
        "--no-progress",
    ]
