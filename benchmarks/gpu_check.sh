#!/usr/bin/env bash
# The GPU checks, as one prepared script for a lent GPU machine (its image has torch and
# transformers; allornone runs from src/ without installing). Logs go to $OUT (or ./gpu-out).
#   bash benchmarks/gpu_check.sh [FAMILY_DIR]
#
# 1. GPT-2 small (random, bf16): extraction vs the bare forward on the same batches (~1 min).
# 2. A randomly initialised Llama-3.1-8B-shaped model (the real config, bf16, built on the
#    GPU: no download) through load() (logits check on the device), extraction vs bare
#    forward, and the whole audit (--quick) on it; prints wall time, peak GPU memory,
#    extraction tokens/s and the ratio to the bare forward (goal >= 0.8). About 3-5 min on an
#    H100/H200; each step has its own timeout, the whole script stays under ~8 min.
# 3. With FAMILY_DIR: the training benchmark.
#
# No GPU: exits 2 at once with a one-line message. CPU dry run of the Python part (tiny shape,
# seconds): GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
PY=${PYTHON:-python3}
TINY=${GPU_CHECK_TINY:-0}

# what the audit needs on the image: fail fast, naming what is missing
$PY - <<'EOF' || exit 2
import importlib.util, sys
need = ["torch", "transformers", "tokenizers", "numpy", "scipy", "tqdm"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing Python packages on this machine: {', '.join(missing)}")
EOF

if [ "$TINY" = "1" ]; then
  echo "gpu_check: GPU_CHECK_TINY=1: CPU dry run with a tiny Llama shape (real vocabulary)"
  DEV=cpu; SHAPE=tiny; N=64; BS=16; SEQ=32
else
  if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU visible to torch here (torch.cuda.is_available() is False):" \
      "this script is for a GPU machine; GPU_CHECK_TINY=1 runs its Python part on the CPU" >&2
    exit 2
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  DEV=cuda; SHAPE=llama-3.1-8b; N=4096; BS=128; SEQ=128
fi
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"

rc=0
if [ "$TINY" != "1" ]; then
  timeout 120 $PY benchmarks/bench_extraction.py --random-config gpt2-small --device cuda \
    --dtype bfloat16 --n 8192 --batch-size 256 --seq-len 128 --n-single 0 --no-peer 2>&1 \
    | tee "$OUT/extract_gpt2.txt" || rc=1
fi
timeout 420 $PY benchmarks/bench_extraction.py --audit --random-config "$SHAPE" --device "$DEV" \
  --dtype bfloat16 --n "$N" --batch-size "$BS" --seq-len "$SEQ" 2>&1 \
  | tee "$OUT/audit_$SHAPE.txt"
[ "${PIPESTATUS[0]}" = "0" ] || { echo "gpu_check: the $SHAPE audit failed (see $OUT/audit_$SHAPE.txt)" >&2; rc=1; }

if [ -n "${1:-}" ] && [ "$TINY" != "1" ]; then
  timeout 150 $PY benchmarks/bench_train.py "$1" --steps 100 --scale 4 --device cuda 2>&1 \
    | grep -v "^\[transformers\]" | tee "$OUT/train.txt"
fi
exit $rc
