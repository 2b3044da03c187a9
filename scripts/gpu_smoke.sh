#!/usr/bin/env bash
# A few GRPO steps of the tiny model in bf16 on CUDA with DeepSpeed ZeRO-2; prints steps/s.
# Exits 3 with a clear message where no CUDA GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
command -v "$PY" >/dev/null || { scripts/bootstrap.sh; PY=.venv/bin/python; }
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_smoke: no CUDA GPU visible to torch (torch.cuda.is_available() is False); nothing to do." >&2
  exit 3
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
work=${WORK:-$(mktemp -d)}
steps=${STEPS:-10}
common=(--preset smoke --set policy.dtype=bf16)
"$PY" -m modomodo.cli data curate --out "$work/data" "${common[@]}"
"$PY" -m modomodo.cli warmstart --data "$work/data" --out "$work/base" "${common[@]}" --set sft.steps=20
"$PY" -m modomodo.cli train --data "$work/data" --base "$work/base/model" --out "$work/rl" "${common[@]}" \
  --set train.deepspeed=zero2 --set train.steps="$steps" --set train.checkpoint_every=1000
"$PY" - "$work/rl/train_summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
history = s["log_history"]
runtime = next(h["train_runtime"] for h in reversed(history) if "train_runtime" in h)
# The first step pays for CUDA context and kernel warm-up; the median of the rest is the steady rate.
later = sorted([float(h["step_time"]) for h in history if "step_time" in h][1:])
steady = f", steady {1 / later[len(later) // 2]:.2f} steps/s after the first" if later else ""
print(f"gpu_smoke: {s['steps']} GRPO steps, bf16 + DeepSpeed ZeRO-2, {s['steps'] / runtime:.2f} steps/s{steady}")
PY
