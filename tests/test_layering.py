"""The layers flow one way, visible in the folders, and no package reaches into another's
private names.

    core (predictor, structure, equivalence, sampler, linalg, the shared private helpers)
      -> data, properties (numpy only)  -> testing
      -> models (torch, transformers, gensim)
      -> report (rendering)
      -> audit, family
      -> cli

Every ``import`` in ``src/allornone`` (also those inside functions) is read with ``ast``; a
module may import its own package, anything in a lower layer, and third-party packages its
layer allows. The top-level private modules (``_validation``, ``_io``, ``_parallel``,
``_tables``) are the core's shared helpers and may be imported from anywhere; a private
name (``_x``) of another subpackage may not. Inside one package (the root ``allornone``,
``data``, ``properties``, ...) the modules import each other without a circle, counting
imports inside functions too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "allornone"

LAYERS = {
    "core": 0,
    "data": 1,
    "properties": 1,
    "testing": 2,
    "models": 3,
    "report": 4,
    "audit": 5,
    "family": 5,
    "cli": 6,
}
#: third-party packages a layer may not import (the numeric layers are numpy/scipy only)
FORBIDDEN_THIRD_PARTY = {
    0: {"torch", "transformers", "gensim", "gguf", "accelerate", "matplotlib", "pandas"},
    1: {"torch", "transformers", "gensim", "gguf", "accelerate", "matplotlib"},
    2: {"torch", "transformers", "gensim", "gguf", "accelerate", "matplotlib"},
}
#: core modules where pandas may be imported (lazily, for ``to_frame``)
PANDAS_OK = {"_tables"}


def _package_of(parts: tuple[str, ...]) -> str:
    """Layer name of a module given by its path parts below ``allornone``."""
    head = parts[0]
    if head.endswith(".py"):
        head = head[:-3]
    if head in ("cli", "__main__"):
        return "cli"
    if head in LAYERS:
        return head
    return "core"


def _modules() -> list[tuple[Path, tuple[str, ...]]]:
    return [(p, p.relative_to(SRC).parts) for p in sorted(SRC.rglob("*.py"))]


def _imports(path: Path, parts: tuple[str, ...]):
    """(absolute dotted module below allornone or third-party, names, lineno) of each import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = ["allornone", *parts[:-1]]  # package containing this module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod, [a.name for a in node.names], node.lineno


def _violations() -> list[str]:
    bad = []
    for path, parts in _modules():
        if parts == ("__init__.py",):
            continue  # the package root only re-exports and lazily imports submodules
        me = _package_of(parts)
        my_layer = LAYERS[me]
        stem = parts[-1][:-3]
        for mod, names, line in _imports(path, parts):
            where = f"{'/'.join(parts)}:{line}"
            top = mod.split(".")[0]
            if top != "allornone":
                forbidden = FORBIDDEN_THIRD_PARTY.get(my_layer, set())
                if top == "pandas" and stem in PANDAS_OK:
                    continue
                if top in forbidden:
                    bad.append(f"{where}: layer {me!r} imports {top}")
                continue
            sub = tuple(mod.split(".")[1:])
            targets = [sub + (n,) for n in names] if names else [sub]
            for target in targets:
                # resolve ``from . import x`` (x a module) and ``from .mod import name``
                cand = (
                    target
                    if (
                        SRC.joinpath(*target).with_suffix(".py").exists()
                        or SRC.joinpath(*target).is_dir()
                    )
                    else target[:-1]
                )
                if not cand:
                    continue
                other = _package_of(cand if cand[0] in LAYERS or len(cand) > 1 else cand)
                if LAYERS[other] > my_layer or (LAYERS[other] == my_layer and other != me):
                    bad.append(
                        f"{where}: {me!r} (layer {my_layer}) imports {'.'.join(target)} "
                        f"from {other!r} (layer {LAYERS[other]})"
                    )
                if other != me and other != "core":
                    private = [p for p in target if p.startswith("_") and p != "__init__"]
                    if private:
                        bad.append(
                            f"{where}: {me!r} imports the private {'.'.join(target)} of {other!r}"
                        )
    return bad


def test_layers_flow_one_way_and_no_private_imports_across_packages():
    bad = _violations()
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The scan is not vacuous: a planted upward import is reported."""
    fake = tmp_path / "allornone"
    (fake / "properties").mkdir(parents=True)
    (fake / "audit").mkdir()
    (fake / "audit" / "x.py").write_text("")
    (fake / "properties" / "p.py").write_text(
        "import torch\nfrom ..audit import x\nfrom ..audit.x import _hidden\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    bad = _violations()
    assert any("imports torch" in b for b in bad)
    assert any("imports audit.x" in b for b in bad)
    assert any("private" in b for b in bad)


@pytest.mark.parametrize("module", ["allornone", "allornone.properties"])
def test_numeric_layers_import_without_torch(module):
    """``import allornone`` (and the properties) stay cheap: no torch, transformers, gensim,
    matplotlib or pandas until a model, a report or a table is asked for."""
    code = (
        f"import sys, numpy as np; import {module} as m; import allornone as aon; "
        "p = aon.NextTokenPredictor(np.eye(3), np.eye(4, 3)); aon.structure(p); "
        "heavy = [k for k in ('torch', 'transformers', 'gensim', 'matplotlib', 'pandas') "
        "if k in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import {module} loaded {out.stdout.strip()}"


def test_submodules_are_reachable_lazily():
    code = (
        "import sys, allornone as aon; assert 'allornone.models' not in sys.modules; "
        "print(aon.models.load.__name__, aon.properties.parallelism.__name__, "
        "aon.audit.run_audit.__name__, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["load", "parallelism", "run_audit", "True"]


# ---------------------------------------------------------------------------- import cycles
def _node(target: tuple[str, ...]) -> tuple[str, ...] | None:
    """The module an import of ``allornone.<target>`` reaches: ``target`` when it is a module
    or a package (its ``__init__``), else its parent (``from .mod import name``)."""
    for cand in (target, target[:-1]):
        if SRC.joinpath(*cand).is_dir() and SRC.joinpath(*cand, "__init__.py").exists():
            return cand
        if cand and SRC.joinpath(*cand).with_suffix(".py").exists():
            return cand
    return None


def _group(node: tuple[str, ...]) -> str:
    """The package a module belongs to: its top folder below ``allornone`` (subpackages such
    as ``audit.compare`` included), else the root package ``allornone``."""
    return node[0] if node and SRC.joinpath(node[0]).is_dir() else "allornone"


def _packages() -> list[str]:
    return ["allornone"] + sorted(
        p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )


def _import_graph() -> dict[tuple[str, ...], dict[tuple[str, ...], int]]:
    """``{module: {imported module of the same package: first line}}`` for every module of
    ``src/allornone``; a package is its ``__init__`` (node ``("data",)``, root ``()``), and
    imports inside functions count (a function-local import does not break a circle)."""
    graph: dict[tuple[str, ...], dict[tuple[str, ...], int]] = {}
    for path, parts in _modules():
        me = parts[:-1] if parts[-1] == "__init__.py" else (*parts[:-1], parts[-1][:-3])
        edges = graph.setdefault(me, {})
        for mod, names, line in _imports(path, parts):
            if mod.split(".")[0] != "allornone":
                continue
            sub = tuple(mod.split(".")[1:])
            for target in [sub + (n,) for n in names] if names else [sub]:
                node = _node(target)
                if node is not None and node != me and _group(node) == _group(me):
                    edges.setdefault(node, line)
    return graph


def _cycles(package: str) -> list[str]:
    """Each import cycle among the modules of ``package``, as ``a -> b (a.py:line) -> a``:
    one cycle per strongly connected component (Tarjan's algorithm)."""
    graph = {m: e for m, e in _import_graph().items() if _group(m) == package}
    index: dict[tuple[str, ...], int] = {}
    low: dict[tuple[str, ...], int] = {}
    stack: list[tuple[str, ...]] = []
    components: list[list[tuple[str, ...]]] = []

    def visit(v: tuple[str, ...]) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)

    def name(m: tuple[str, ...]) -> str:
        return ".".join(("allornone", *m))

    def file(m: tuple[str, ...]) -> str:
        return "/".join((*m, "__init__.py")) if SRC.joinpath(*m).is_dir() else "/".join(m) + ".py"

    out = []
    for comp in components:
        members = set(comp)
        start = min(comp)
        path, seen = [start], {start}
        while True:  # walk inside the component until a module repeats: that is a cycle
            nxt = min(w for w in graph[path[-1]] if w in members)
            if nxt in seen:
                cycle = path[path.index(nxt) :] + [nxt]
                break
            path.append(nxt)
            seen.add(nxt)
        steps = " -> ".join(
            f"{name(b)} ({file(a)}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:])
        )
        out.append(f"{name(cycle[0])} -> {steps} [{len(comp)} modules in the circle]")
    return out


@pytest.mark.parametrize("package", _packages())
def test_no_import_cycle_inside_a_package(package: str) -> None:
    """Modules of one package import each other one way: no circle, not even one held
    together by imports inside functions."""
    cycles = _cycles(package)
    assert not cycles, f"import cycles in {package}:\n" + "\n".join(cycles)


def test_the_cycle_checker_sees_a_function_local_circle(tmp_path, monkeypatch):
    fake = tmp_path / "allornone"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "__init__.py").write_text("")
    (fake / "data" / "a.py").write_text("from allornone.data.b import f\n")
    (fake / "data" / "b.py").write_text("def f():\n    from . import a\n")
    (fake / "data" / "c.py").write_text("from .a import f\n")  # not in the circle
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert _packages() == ["allornone", "data"]
    (cycle,) = _cycles("data")
    assert cycle.startswith("allornone.data.a -> allornone.data.b (data/a.py:1) -> ")
    assert cycle.endswith("allornone.data.a (data/b.py:2) [2 modules in the circle]")
    assert _cycles("allornone") == []
