"""report.html renders in a real browser (headless Debian chromium): title, all images decoded."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from audit_helpers import CONCEPTS, LABELS, RELATIONS, tiny_model

from allornone.audit import AuditConfig, run_audit
from allornone.audit.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    cfg = AuditConfig(
        concepts=str(CONCEPTS), relations=str(RELATIONS), labels=str(LABELS), progress=False
    )
    write_report(run_audit(cfg, model=tiny_model()), out)
    return out


def test_report_renders_with_all_images(report: Path, tmp_path: Path) -> None:
    url = (report / "report.html").resolve().as_uri()
    r = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    dom = r.stdout
    assert "<title>allornone audit: tiny</title>" in dom, r.stderr[-2000:]
    n_img = len(re.findall(r"<img ", dom))
    # one figure per built-in step that draws one (parallelism, relations, probing, steering,
    # orders), the spectrum and the equivalence class
    assert n_img == 7
    assert 'data-images-ok="yes"' in dom, "some <img> did not decode in the browser"
    assert f'data-images="{n_img}"' in dom
    # the verdict first: the summary is the first section, before the model table
    assert ">Summary</h2>" in dom and dom.index(">Summary</h2>") < dom.index(">Model</h2>")


def test_report_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    url = (report / "report.html").resolve().as_uri()
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", url)
    assert shot.exists() and shot.stat().st_size > 20_000  # a blank page is ~ a few kB
