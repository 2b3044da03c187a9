#!/usr/bin/env bash
# The test suite: installs what it needs (Python deps, Prometheus, Pushgateway, Chromium), then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec .venv/bin/python -m pytest -q -m "not gpu" "$@"
