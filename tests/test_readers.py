"""The readers of users' own concept and relation files (Park, BATS, gensim analogy, LRE,
the project's TSV/JSON): synthetic files in each format, written to tmp."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from allornone._validation import AllOrNoneError
from allornone.data import (
    Relation,
    lre_relations,
    read_concepts,
    read_labels_tsv,
    read_pairs_tsv,
    read_relations,
    read_relations_json,
)
from allornone.data.readers import MAX_LISTED, concept_format, relation_file_problems
from allornone.data.relations import lre_path
from allornone.data.types import relation_problems


def _w(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


# ---------------------------------------------------------------------------- concepts
def test_park_file_named_from_file_identical_pairs_dropped_and_counted(tmp_path: Path) -> None:
    p = _w(
        tmp_path,
        "[country - capital].txt",
        "France\tParis\nJapan\tTokyo\nDjibouti\tDjibouti\nFrance\tParis\n",
    )
    assert concept_format(p, p.read_text()) == "park"
    got = read_concepts([p])
    (fam,) = got.families
    assert fam.name == "country - capital"
    assert fam.pairs == [("France", "Paris"), ("Japan", "Tokyo")]
    assert any("1 pair(s) whose two words are identical dropped" in n for n in got.notes)
    # the one-file reader agrees (and no longer aborts on the identical pair)
    assert read_pairs_tsv(p)[0].pairs == fam.pairs


def test_park_folder_merged_into_families(tmp_path: Path) -> None:
    folder = tmp_path / "word_pairs"
    _w(folder, "[country - capital].txt", "France\tParis\nJapan\tTokyo\n")
    _w(folder, "[male - female].txt", "king\tqueen\nman\twoman\nboy\tgirl\n")
    _w(folder, "README.md", "not data\n")
    _w(folder, "LICENSE", "MIT\n")
    got = read_concepts(folder)
    assert [f.name for f in got.families] == ["country - capital", "male - female"]
    assert [len(f) for f in got.families] == [2, 3]
    # several paths: a folder and a TSV file together
    tsv = _w(tmp_path, "mine.tsv", "a\tb\tfamily\nbig\tbigger\tcomparative\n")
    got = read_concepts([folder, tsv])
    assert [f.name for f in got.families][-1] == "comparative"


def test_bats_several_correct_answers(tmp_path: Path) -> None:
    folder = tmp_path / "BATS_3.0" / "1_Inflectional_morphology"
    p = _w(
        folder,
        "I01 [noun - plural_reg].txt",
        "album\talbums\nlife\tlives/lifes\nsheep\tsheep/sheeps\nfish\tfish\n",
    )
    assert concept_format(p, p.read_text()) == "bats"
    got = read_concepts(tmp_path / "BATS_3.0")
    (fam,) = got.families
    assert fam.name == "I01 noun - plural_reg"
    assert fam.pairs == [("album", "albums"), ("life", "lives"), ("sheep", "sheeps")]
    assert fam.answers("life", "lives") == ("lives", "lifes")
    assert fam.answers("sheep", "sheeps") == ("sheeps",)  # the identical answer is dropped
    assert fam.answers("album", "albums") == ("albums",)
    assert any("1 pair(s)" in n for n in got.notes)  # fish/fish


def test_gensim_analogy_format_gives_families_and_questions(tmp_path: Path) -> None:
    p = _w(
        tmp_path,
        "questions.txt",
        ": capitals\nAthens Greece Baghdad Iraq\nBaghdad Iraq Athens Greece\n"
        ": gender\nking queen man woman\n",
    )
    got = read_concepts(p)
    assert list(got.questions) == ["capitals", "gender"]
    assert got.questions["capitals"][0] == ("Athens", "Greece", "Baghdad", "Iraq")
    by = {f.name: f for f in got.families}
    assert by["capitals"].pairs == [("Athens", "Greece"), ("Baghdad", "Iraq")]
    assert by["gender"].pairs == [("king", "queen"), ("man", "woman")]
    capped = read_concepts(p, max_questions=1, max_pairs=1)
    assert len(capped.questions["capitals"]) == 1
    assert all(len(f) == 1 for f in capped.families)
    assert any("--quick" in n for n in capped.notes)


def test_every_problem_in_every_file_reported_at_once(tmp_path: Path) -> None:
    a = _w(tmp_path, "[a - b].txt", "x\ty\nonlyone\nz\tw\nbad\t\t\n")
    b = _w(tmp_path, "mine.tsv", "k\tq\nk\tq\tf\textra\n")
    c = _w(tmp_path, "q.txt", ": s\na b c\nstray line before\n")
    with pytest.raises(AllOrNoneError) as err:
        read_concepts([a, b, c, tmp_path / "missing.tsv"])
    msg = str(err.value)
    assert msg.startswith("6 problems in the --concepts input")
    for where in (f"{a}, line 2", f"{a}, line 4", f"{b}, line 2", f"{c}, line 2", f"{c}, line 3"):
        assert where in msg
    assert "missing.tsv: does not exist" in msg


def test_problem_list_is_capped(tmp_path: Path) -> None:
    p = _w(tmp_path, "bad.tsv", "".join(f"w{i}\n" for i in range(100)))
    with pytest.raises(AllOrNoneError, match=r"100 problems.*and 75 more") as err:
        read_concepts(p)
    assert str(err.value).count("expected 2 or 3") == MAX_LISTED


def test_same_family_in_two_files_and_empty_folder(tmp_path: Path) -> None:
    _w(tmp_path / "x", "[a - b].txt", "p\tq\n")
    _w(tmp_path / "y", "[a - b].txt", "r\ts\n")
    with pytest.raises(AllOrNoneError, match="family 'a - b' is also defined in"):
        read_concepts(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AllOrNoneError, match="holds no .txt/.tsv files"):
        read_concepts(tmp_path / "empty")


# ---------------------------------------------------------------------------- relations
_LRE = {
    "name": "adjective comparative",
    "prompt_templates": ["The comparative form of {} is"],
    "prompt_templates_zs": ["What is the comparative form of {}? It is"],
    "properties": {
        "relation_type": "linguistic",
        "domain_name": "adjective",
        "range_name": "adjective",
        "symmetric": False,
    },
    "samples": [{"subject": "big", "object": "bigger"}, {"subject": "small", "object": "smaller"}],
}


def test_lre_file_read_unmodified_and_metadata_kept(tmp_path: Path) -> None:
    p = _w(tmp_path, "adj_comparative.json", json.dumps(_LRE, indent=4))
    (r,) = read_relations_json(p)
    assert r.name == "adjective comparative"
    assert r.templates == ["The comparative form of {} is"]
    assert r.templates_zs == ["What is the comparative form of {}? It is"]
    assert r.properties["range_name"] == "adjective"
    assert r.samples == [("big", "bigger"), ("small", "smaller")]
    meta = r.metadata()
    assert meta["source"] == str(p) and meta["templates_zs"] == r.templates_zs


def test_relations_folder_tree_and_own_schema_together(tmp_path: Path) -> None:
    _w(tmp_path / "lre" / "linguistic", "adj.json", json.dumps(_LRE))
    other = {**_LRE, "name": "verb past"}
    _w(tmp_path / "lre" / "linguistic" / "deeper", "verb.json", json.dumps(other))
    own = {
        "name": "caps",
        "templates": ["The capital of {} is"],
        "samples": [{"subject": "France", "object": "Paris"}],
        "description": "my capitals",
    }
    mine = _w(tmp_path, "mine.json", json.dumps([own]))
    got = read_relations([tmp_path / "lre", mine])
    assert [r.name for r in got.relations] == ["adjective comparative", "verb past", "caps"]
    assert got.relations[2].description == "my capitals"


def test_relation_problems_all_reported(tmp_path: Path) -> None:
    bad = {
        **_LRE,
        "prompt_templates": ["no slot"],
        "samples": [
            {"subject": "big"},
            {"subject": 3, "object": "x"},
            {"subject": "a", "object": "b"},
        ],
        "extra": 1,
    }
    p = _w(tmp_path, "bad.json", json.dumps(bad))
    q = _w(tmp_path, "broken.json", '{\n"name": "x",\n"templates": [,]}')
    dup = _w(tmp_path, "dup.json", json.dumps(_LRE))
    dup2 = _w(tmp_path, "sub/dup.json", json.dumps(_LRE))
    with pytest.raises(AllOrNoneError) as err:
        read_relations([p, q, dup, dup2])
    msg = str(err.value)
    assert msg.startswith("6 problems in the --relations input")
    assert "unknown key(s) ['extra']" in msg
    assert "prompt_template 0 ('no slot') must contain '{}' exactly once" in msg
    assert "sample 0 must be an object" in msg and "sample 1: subject" in msg
    assert re.search(r"broken\.json, line 3, column \d+: invalid JSON", msg)
    assert f"used more than once (also in {dup})" in msg


def test_missing_templates_key_error_names_both_spellings(tmp_path: Path) -> None:
    obj = {"name": "r", "samples": [{"subject": "a", "object": "b"}]}
    with pytest.raises(
        AllOrNoneError, match=r"missing key\(s\) \['templates'\] \(or 'prompt_templates'"
    ):
        read_relations_json(_w(tmp_path, "r.json", json.dumps(obj)))


def test_shipped_lre_relations() -> None:
    rels = lre_relations()
    assert len(rels) == 40
    assert (lre_path() / "LICENSE").is_file()
    by = {r.name: r for r in rels}
    comp = by["adjective comparative"]
    assert ("big", "bigger") in comp.samples and len(comp) == 57  # 68 samples, 11 exact repeats
    assert comp.templates == ["The comparative form of {} is"] and len(comp.templates_zs) == 2
    assert comp.properties["relation_type"] == "linguistic"
    assert "Hernandez" in comp.source and "linguistic/adj_comparative.json" in comp.source
    assert sum(len(r) for r in rels) == 10_837  # 10,876 less 39 repeats
    assert {r.properties["relation_type"] for r in rels} == {"commonsense", "factual", "linguistic"}


# ---------------------------------------------------------------------------- byte-order mark
_BOM = "\ufeff"


def test_bom_tsv_with_header_reads_like_its_bom_free_copy(tmp_path: Path) -> None:
    """Excel and Notepad save UTF-8 with a byte-order mark: the header stays a header."""
    body = "a\tb\tfamily\nking\tqueen\tgender\nman\twoman\tgender\n"
    plain = _w(tmp_path / "plain", "mine.tsv", body)
    bom = _w(tmp_path / "bom", "mine.tsv", _BOM + body)
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    (want,) = read_pairs_tsv(plain)
    (got,) = read_pairs_tsv(bom)
    assert (
        (got.name, got.pairs)
        == (want.name, want.pairs)
        == (
            "gender",
            [
                ("king", "queen"),
                ("man", "woman"),
            ],
        )
    )
    # a BOM'd first pair (no header) keeps its first word clean
    (fam,) = read_concepts(_w(tmp_path, "nohead.tsv", _BOM + "king\tqueen\n")).families
    assert fam.pairs == [("king", "queen")]


def test_bom_relation_json_reads_like_its_bom_free_copy(tmp_path: Path) -> None:
    text = json.dumps(_LRE, indent=2)
    plain = _w(tmp_path / "plain", "adj.json", text)
    bom = _w(tmp_path / "bom", "adj.json", _BOM + text)
    (want,) = read_relations_json(plain)
    (got,) = read_relations_json(bom)
    assert (got.name, got.templates, got.templates_zs, got.samples, got.properties) == (
        want.name,
        want.templates,
        want.templates_zs,
        want.samples,
        want.properties,
    )
    assert relation_file_problems(bom) == []


def test_bom_labels_and_analogy_files(tmp_path: Path) -> None:
    labels = read_labels_tsv(_w(tmp_path, "l.tsv", _BOM + "text\tlabel\nhi there\tx\nbye\ty\n"))
    assert labels.texts == ["hi there", "bye"] and labels.labels == ["x", "y"]
    got = read_concepts(_w(tmp_path, "q.txt", _BOM + ": caps\nAthens Greece Rome Italy\n"))
    assert list(got.questions) == ["caps"]  # the ': section' line is still seen as one


# ---------------------------------------------------------------------------- one validator
def test_relation_lists_every_problem_at_once() -> None:
    with pytest.raises(AllOrNoneError) as err:
        Relation(" ", ["no slot", 3, "{} and {}"], [("a", ""), "x", ("b", "c")], templates_zs=[4])
    msg = str(err.value)
    assert "\n" not in msg
    for part in (
        "'name' must be a non-empty string",
        "template 0 ('no slot') must contain '{}' exactly once",
        "template 1 is int, not a string",
        "template 2 ('{} and {}') must contain",
        "template_zs 0 is int",
        "sample 0: object must be a non-empty string",
        "sample 1 must be a (subject, object) pair of strings, got 'x'",
    ):
        assert part in msg
    assert "sample 2" not in msg


def test_relation_problems_each_line_says_the_fix() -> None:
    problems = relation_problems(None, "{} is", [])
    assert len(problems) == 3
    assert all("\n" not in p and ": " in p for p in problems)
    assert "add at least one" in problems[2]
    assert relation_problems("ok", ["{} is"], [("a", "b")]) == []


def test_relation_file_problems_are_what_read_relations_reports(tmp_path: Path) -> None:
    bad = [
        {**_LRE, "prompt_templates": ["no slot"], "properties": 3},
        {"name": "", "templates": ["{}"], "samples": [{"subject": "a", "object": "b"}]},
        _LRE,
        _LRE,
    ]
    p = _w(tmp_path, "bad.json", json.dumps(bad))
    problems = relation_file_problems(p)
    assert len(problems) == 4
    assert all(x.startswith(f"{p}: relation ") for x in problems)
    assert "relation 0 ('adjective comparative'): 'properties' must be an object" in problems[0]
    assert "prompt_template 0 ('no slot')" in problems[1]
    assert "relation 1: 'name' must be a non-empty string" in problems[2]
    assert "relation 3 ('adjective comparative'): relation name" in problems[3]
    with pytest.raises(AllOrNoneError) as err:
        read_relations(p)
    assert str(err.value) == "4 problems in the --relations input: " + "; ".join(problems)
    broken = _w(tmp_path, "broken.json", '{"name": "x",\n "templates": [,]}')
    (only,) = relation_file_problems(broken)
    assert only.startswith(f"{broken}, line 2, column ") and "invalid JSON" in only


def test_packaged_lre_files_pass_the_same_validator() -> None:
    files = sorted(lre_path().rglob("*.json"))
    assert len(files) == 40
    assert [x for f in files for x in relation_file_problems(f)] == []
