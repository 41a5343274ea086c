"""The audit's inputs: parsed before the model loads, tokenised once, dropped families and
relations said out loud, --quick caps the user's items (tiny model, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_helpers import LABELS, RELATIONS, tiny_model

from allornone._validation import AllOrNoneError
from allornone.audit import AuditConfig, run_audit
from allornone.audit.inputs import Inputs, WordCache, load_inputs, select_subjects
from allornone.cli import main


class CountingModel:
    """Forwards to a tiny model and counts how often each word is tokenised."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.seen: dict[str, int] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def word_tokens(self, words):  # type: ignore[no-untyped-def]
        for w in words:
            self.seen[w] = self.seen.get(w, 0) + 1
        return self._inner.word_tokens(words)  # type: ignore[attr-defined]


def _family_file(tmp_path: Path) -> Path:
    # 'gender' is usable (tiny model knows the words), 'ghosts' has only one known pair
    p = tmp_path / "pairs.tsv"
    p.write_text(
        "king\tqueen\tgender\nman\twoman\tgender\nboy\tgirl\tgender\n"
        "king\tzzqx\tghosts\nyyqz\twwqz\tghosts\nman\tqueen\tghosts\n"
    )
    return p


def test_user_files_are_validated_before_the_model_loads(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nonly-one\nx\ty\nz\n")
    cfg = AuditConfig(model="no-such-model-anywhere", concepts=str(bad), progress=False)
    with pytest.raises(AllOrNoneError, match=r"2 problems in the --concepts input.*line 2.*line 4"):
        run_audit(cfg)  # a model error would mean the model was loaded first


def test_cli_reports_all_problems_of_several_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rel = tmp_path / "adj_comparative.json"
    rel.write_text(json.dumps({"name": "x", "templates": ["no slot"], "samples": []}))
    pairs = tmp_path / "[a - b].txt"
    pairs.write_text("one\n")
    code = main(
        ["audit", "--model", "no-such-model", "--out", str(tmp_path / "o")]
        + ["--concepts", str(pairs), str(tmp_path / "nope"), "--relations", str(rel)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "2 problems in the --concepts input" in err and "nope: does not exist" in err
    assert not (tmp_path / "o").exists()


def test_each_word_is_tokenised_once_and_dropped_families_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lm = CountingModel(tiny_model())
    cfg = AuditConfig(
        concepts=str(_family_file(tmp_path)),
        relations=str(RELATIONS),
        labels=str(LABELS),
        progress=False,
    )
    res = run_audit(cfg, model=lm)
    assert lm.seen and max(lm.seen.values()) == 1, {w: n for w, n in lm.seen.items() if n > 1}
    names = {p.name for p in res.of_kind("parallelism")}
    assert names == {"gender"}
    dropped = res.extra["inputs"]["dropped"]
    assert [d["name"] for d in dropped if d["kind"] == "family"] == ["ghosts"]
    assert "1 of 3 pairs" in dropped[0]["reason"]
    err = capsys.readouterr().err
    assert "warning: family 'ghosts' dropped" in err


def test_quick_caps_user_items(tmp_path: Path) -> None:
    p = tmp_path / "many.tsv"
    p.write_text("".join(f"w{i}\tv{i}\n" for i in range(500)))
    big = AuditConfig(concepts=str(p), quick=True).sized()
    inp = load_inputs(big)
    assert len(inp.families[0].pairs) == 40
    assert any("first 40 of 500 pairs" in n for n in inp.notes)
    assert len(load_inputs(AuditConfig(concepts=str(p))).families[0].pairs) == 500


def test_relations_with_too_few_single_token_objects_are_listed(tmp_path: Path) -> None:
    rels = json.loads(Path(RELATIONS).read_text())
    thin = {
        "name": "thin",
        "templates": ["{} goes with"],
        "samples": [{"subject": "king", "object": "qqqz"}, {"subject": "man", "object": "queen"}],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps([*rels, thin]))
    cfg = AuditConfig(relations=str(path), labels=str(LABELS), progress=False)
    inp = load_inputs(cfg)
    select_subjects(WordCache(tiny_model()), inp, cfg)
    assert "thin" not in {r.name for r in inp.relations}
    (d,) = [d for d in inp.dropped if d["name"] == "thin"]
    assert d["kind"] == "relation" and "1 of 2 subjects" in d["reason"]
    assert inp.subject_counts[inp.relations[0].name]["used"] == len(inp.relations[0].samples)


def test_bats_alternatives_resolved_to_a_single_token_answer() -> None:
    from allornone.data import PairFamily

    fam = PairFamily(
        "f",
        [("king", "zzz"), ("man", "woman")],
        alternatives={"king": ("zzz", "queen"), "man": ("woman",)},
    )
    inp = Inputs(families=[fam])
    select_subjects(WordCache(tiny_model()), inp, AuditConfig())
    assert inp.families[0].pairs == [("king", "queen"), ("man", "woman")]


def test_cli_audit_with_a_park_folder_and_an_lre_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from allornone.audit import pipeline

    monkeypatch.setattr(pipeline, "load_model", lambda cfg: tiny_model())
    folder = tmp_path / "word_pairs"
    folder.mkdir()
    (folder / "[male - female].txt").write_text("king\tqueen\nman\twoman\nboy\tgirl\n")
    (folder / "[base - comparative].txt").write_text("big\tbigger\nsmall\tsmaller\nbig\tbig\n")
    rels = json.loads(Path(RELATIONS).read_text())
    lre = {
        "name": rels[0]["name"],
        "prompt_templates": rels[0]["templates"],
        "prompt_templates_zs": ["What is the capital of {}? It is"],
        "properties": {"relation_type": "factual"},
        "samples": rels[0]["samples"],
    }
    (tmp_path / "capital.json").write_text(json.dumps(lre))
    out = tmp_path / "rep"
    code = main(
        ["audit", "--model", "tiny", "--out", str(out), "--no-progress", "--labels", str(LABELS)]
        + ["--concepts", str(folder), "--relations", str(tmp_path / "capital.json")]
    )
    assert code == 0
    tree = json.loads((out / "results.json").read_text())
    fams = {p["name"] for p in tree["properties"] if p["property"] == "parallelism"}
    assert "male - female" in fams
    (rel,) = [p for p in tree["properties"] if p["property"] == "relational"]
    assert rel["details"]["properties"] == {"relation_type": "factual"}
    assert rel["details"]["templates_zs"] == ["What is the capital of {}? It is"]
    assert rel["details"]["source"] == str(tmp_path / "capital.json")
    assert "n_test" in rel["details"] and "ci" in rel["details"]
    assert any("identical dropped" in n for n in tree["inputs"]["notes"])
    md = (out / "report.md").read_text()
    assert "held out" in md


@pytest.mark.parametrize("mode", ["zero-shot", "few-shot"])
def test_prompt_modes(tmp_path: Path, mode: str) -> None:
    from allornone.audit.inputs import N_SHOTS, ContextSets

    rels = json.loads(Path(RELATIONS).read_text())
    r0 = {**rels[0], "prompt_templates_zs": ["Q: capital of {}? A:"]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps([r0]))
    cfg = AuditConfig(relations=str(path), labels=str(LABELS), prompts=mode)
    inp = load_inputs(cfg)
    select_subjects(WordCache(tiny_model()), inp, cfg)
    ctx = ContextSets.build(inp)
    (r,) = inp.relations
    prompts = [ctx.all[i] for i in ctx.rows(f"prompts:{r.name}")]
    if mode == "zero-shot":
        assert prompts[0] == f"Q: capital of {r.samples[0][0]}? A:"
    else:
        shots = inp.shots[r.name]
        assert len(shots) == N_SHOTS + 1
        for (s, _), p in zip(r.samples, prompts):
            lines = p.split("\n")
            assert len(lines) == N_SHOTS + 1 and lines[-1] == r.prompt(s)
            assert all(not line.startswith(r.prompt(s)) for line in lines[:-1])
            assert lines[0].endswith(" " + next(o for x, o in shots if x != s))


def test_unknown_prompt_mode_is_refused_before_the_model() -> None:
    with pytest.raises(AllOrNoneError, match="prompts='two-shot'"):
        load_inputs(AuditConfig(prompts="two-shot"))
