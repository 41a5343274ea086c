"""The property registry, the witness protocol, the audit-step registry and user plugins.

- every built-in property is declared once (a PropertySpec with its statistics) and every
  number its results carry is declared there;
- no module outside a property's own files and the registries names a built-in property by
  string (read with ``ast``);
- the plugin example (examples/my_property.py) passes ``check_property`` and its section
  appears in report.html, report.md and results.json of an audit run with ``--plugin``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from audit_helpers import tiny_args, tiny_model
from planted import planted

import allornone as aon
from allornone.audit import pipeline
from allornone.audit.plugins import load_plugin, unload_plugins
from allornone.audit.step import audit_steps
from allornone.registry import (
    PropertySpec,
    Statistic,
    property_spec,
    property_specs,
    register_property,
)
from allornone.testing import PROTECTED_RAW, check_property

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "allornone"
EXAMPLE = ROOT / "examples" / "my_property.py"
BUILTIN = ("parallelism", "analogy", "relational", "probing", "steering")

#: Files allowed to name a built-in property by string, besides its own files
#: (properties/<name>.py, audit/builtin/<name>.py) and the registries:
ALLOWED = {
    # the results.json schema: "analogy" is the name of a top-level section (a typed field)
    "audit/results.py": {"analogy"},
    # a file format, not the property: the gensim analogy question format
    "data/readers.py": {"analogy"},
    # __all__ re-exports the property functions, which bear the properties' names
    "properties/__init__.py": {"parallelism", "relational", "steering"},
}


def test_every_builtin_property_is_registered_with_its_statistics() -> None:
    names = {s.name for s in property_specs()}
    assert set(BUILTIN) <= names
    for name in BUILTIN:
        spec = property_spec(name)
        assert spec.function is not None and spec.title and spec.note
        assert spec.statistic(spec.headline, "identified").identified is True
        for s in spec.statistics:  # raw is never identified, identified always is
            assert s.where != "raw" or s.identified is not True
            assert s.where != "identified" or s.identified is True
    steps = {s.property for s in audit_steps()}
    assert set(BUILTIN) <= steps


def test_a_result_carries_only_declared_statistics() -> None:
    rng = np.random.default_rng(0)
    m, _ = planted(rng, n=40, V=30, d=10, k=4, jf=2, jg=2)
    results = [
        aon.properties.parallelism(m, [(0, 1), (2, 3), (4, 5)], baseline_draws=2),
        aon.properties.probe(m, [i % 2 for i in range(m.n)]),
        aon.properties.steering(m, m.F[0] - m.F[1], targets=[0, 1]),
        aon.properties.analogy_accuracy(m, [(0, 1, 2, 3), (4, 5, 6, 7)]),
    ]
    for r in results:
        assert property_spec(r.property).undeclared(r) == [], r.property


def test_declarations_refuse_contradictions() -> None:
    with pytest.raises(aon.AllOrNoneError, match="raw and identified"):
        Statistic("x", "a raw statistic", True, "raw")
    with pytest.raises(aon.AllOrNoneError, match="headline"):
        PropertySpec("p", "P", "note", (Statistic("x", "m", False, "raw"),), headline="x")
    spec = property_spec("steering")
    other = PropertySpec("steering", "S", "n", (Statistic("y", "m", True),), headline="y")
    with pytest.raises(aon.AllOrNoneError, match="already registered"):
        register_property(other)
    assert register_property(spec) is spec  # the same declaration again is accepted
    with pytest.raises(aon.AllOrNoneError, match="no property named 'nope'.*registered: "):
        property_spec("nope")


def test_protected_raw_reads_the_registry() -> None:
    assert PROTECTED_RAW["relational"] == ("refined_",)
    assert PROTECTED_RAW["steering"] is None and PROTECTED_RAW["parallelism"] == ()
    assert set(BUILTIN) <= set(PROTECTED_RAW)


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _file_of(module: str) -> str:
    return module.removeprefix("allornone.").replace(".", "/") + ".py"


def test_no_module_outside_a_property_names_it() -> None:
    """The ten modules that named the properties (issue 'Open for extension') no longer do:
    the glossary, report, figures, layers, compare, tables, testing and cli read the specs."""
    owners: dict[str, set[str]] = {}  # module file -> the properties it declares or runs
    for name in BUILTIN:
        fn = property_spec(name).function
        owners.setdefault(_file_of(fn.__module__), set()).add(name)
    for step in audit_steps():
        owners.setdefault(_file_of(step.run.__module__), set()).add(step.property)
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        own = owners.get(rel, set())
        if rel in ("registry.py", "audit/step.py"):
            continue
        named = _string_constants(path) & set(BUILTIN)
        named -= own | ALLOWED.get(rel, set())
        if named:
            bad.append(f"{rel}: {sorted(named)}")
    assert not bad, "modules naming a built-in property by string:\n" + "\n".join(bad)


@pytest.fixture(autouse=True)
def _no_plugin_left():
    """A plugin registered by a test is removed after it (other tests see the built-ins)."""
    yield
    unload_plugins()


def _example():
    return load_plugin(str(EXAMPLE))


def test_plugin_example_passes_check_property() -> None:
    mod = _example()
    rng = np.random.default_rng(3)
    m, _ = planted(rng, n=40, V=30, d=10, k=4, jf=2, jg=2)
    r = check_property(mod.logodds_gap, [(0, 1), (2, 3), (5, 9)], m)
    assert r.property == "logodds_gap" and not r.all_or_none
    # the identified gap is the log-probability difference, computed independently
    lp = m.F @ m.G.T
    lp = (
        lp
        - np.log(np.exp(lp - lp.max(1, keepdims=True)).sum(1, keepdims=True))
        - lp.max(1, keepdims=True)
    )
    want = np.mean([lp[:, b] - lp[:, a] for a, b in [(0, 1), (2, 3), (5, 9)]])
    assert r.identified["mean_gap"] == pytest.approx(want, rel=1e-10)


def test_plugin_errors_are_one_line(tmp_path) -> None:
    with pytest.raises(aon.AllOrNoneError, match="no such file"):
        load_plugin(str(tmp_path / "missing.py"))
    with pytest.raises(aon.AllOrNoneError, match="no module named 'not_a_module_xyz'"):
        load_plugin("not_a_module_xyz")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(aon.AllOrNoneError, match="failed while importing: RuntimeError: boom"):
        load_plugin(str(broken))
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(aon.AllOrNoneError, match="registered no property"):
        load_plugin(str(empty))


def test_plugin_section_in_the_audit(tmp_path, monkeypatch) -> None:
    """``audit --plugin examples/my_property.py`` on the tiny model: the plugin's section in
    report.html, report.md and results.json, its figure, and the built-in figures too."""
    from allornone.cli import main

    monkeypatch.setattr(pipeline, "load_model", lambda cfg: tiny_model())
    out = tmp_path / "rep"
    assert main([*tiny_args(out), "--plugin", str(EXAMPLE)]) == 0
    res = json.loads((out / "results.json").read_text())
    mine = [p for p in res["properties"] if p["property"] == "logodds_gap"]
    assert mine and all("mean_gap" in p["identified"] for p in mine)
    assert res["config"]["plugins"] == [str(EXAMPLE)]
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for text in (html, md):
        assert "Log-odds gap of word pairs (plugin example)" in text
        assert "mean_gap" in text
    assert "- `mean_gap`: mean log p(b|x) - log p(a|x) over contexts and pairs (identified)" in md
    assert (out / "figures" / "logodds_gap.png").is_file()
    loaded = aon.audit.load_results(out)
    assert [p.name for p in loaded.of_kind("logodds_gap")] == [p["name"] for p in mine]
    unload_plugins()
    assert "logodds_gap" not in {s.name for s in property_specs()}
