"""Training throughput of the family's transformers: CPU preset vs the scaled (GPU) preset.

    python benchmarks/bench_train.py FAMILY_DIR [--steps 60] [--scale 4] [--device cuda]

FAMILY_DIR must hold a prepared family (``allornone train --prepare-only --out FAMILY_DIR``,
or any trained family). Each configuration trains one model for ``--steps`` steps into a
temporary copy of the family and reports tokens per second (batch x context x steps / wall
time, held-out evaluation included once at the end), and the ratio between the two presets.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from allornone.family.train import TrainConfig, train_transformer


def run(family: Path, cfg: TrainConfig, width: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        fam = Path(tmp) / "fam"
        fam.mkdir()
        for name in ("family.json", "baseline.json"):
            shutil.copy(family / name, fam / name)
        shutil.copytree(family / "tokenizer", fam / "tokenizer")
        shutil.copytree(family / "data", fam / "data")
        t = time.perf_counter()
        done = train_transformer(fam, cfg, width, 0, progress=False)
        dt = time.perf_counter() - t
    return cfg.batch * cfg.ctx * cfg.steps / dt, done["heldout_ppl"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("family", type=Path)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    base = replace(
        TrainConfig(),
        steps=args.steps,
        eval_every=args.steps,
        checkpoint_every=args.steps,
        device=args.device,
        warmup=min(20, args.steps),
    )
    big = base.scaled(args.scale)
    big = replace(big, steps=args.steps, eval_every=args.steps, checkpoint_every=args.steps)
    rows = []
    for label, cfg in (("CPU preset", base), (f"scaled x{args.scale}", big)):
        width = max(cfg.widths)
        tps, ppl = run(args.family, cfg, width)
        rows.append((label, width, cfg.layers, cfg.ctx, cfg.batch, tps, ppl))
        print(
            f"{label:14s} d={width:4d} layers={cfg.layers} ctx={cfg.ctx} batch={cfg.batch}: "
            f"{tps:10.0f} tokens/s (held-out ppl after {args.steps} steps: {ppl:.1f})"
        )
    flops = rows[1][1] ** 2 * rows[1][2] / (rows[0][1] ** 2 * rows[0][2])
    print(
        f"throughput ratio scaled/CPU preset: {rows[1][5] / rows[0][5]:.2f}x "
        f"(the scaled model has {flops:.0f}x the layer FLOPs per token)"
    )


if __name__ == "__main__":
    main()
