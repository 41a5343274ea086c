#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (its image has torch and transformers;
# allornone runs from src/ without installing). Writes logs to $OUT (or ./gpu-out).
#   bash benchmarks/gpu_check.sh [FAMILY_DIR]
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
timeout 200 python3 benchmarks/bench_extraction.py --random-config gpt2-small --device cuda \
  --dtype bfloat16 --n 8192 --batch-size 256 --seq-len 128 2>&1 | tee "$OUT/extract_gpt2.txt"
timeout 200 python3 benchmarks/bench_extraction.py --random-config llama-1b --device cuda \
  --dtype bfloat16 --n 4096 --batch-size 128 --seq-len 128 --n-single 100 2>&1 | tee "$OUT/extract_llama1b.txt"
if [ -n "${1:-}" ]; then
  timeout 150 python3 benchmarks/bench_train.py "$1" --steps 100 --scale 4 --device cuda 2>&1 \
    | grep -v "^\[transformers\]" | tee "$OUT/train.txt"
fi
