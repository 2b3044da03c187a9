#!/usr/bin/env bash
# The main job: the whole mixture search, locally on CPU, with the synthetic suite and the tiny model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec .venv/bin/modomodo run "$@"
