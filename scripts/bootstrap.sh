#!/usr/bin/env bash
# Creates .venv and installs modomodo into it; idempotent (a stamp skips a second install).
# Usage: scripts/bootstrap.sh [--test]   (--test also installs the test extras and the servers the tests start)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want_test=0; [[ "${1:-}" == "--test" ]] && want_test=1

if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.modomodo-installed$([[ $want_test == 1 ]] && echo -test)
if [[ ! -f $stamp || pyproject.toml -nt $stamp || constraints.txt -nt $stamp ]]; then
  # torch first, from the CPU wheel; the constraints file keeps every later step on that build.
  .venv/bin/pip install -q -c constraints.txt torch==2.13.0
  extras=$([[ $want_test == 1 ]] && echo "[test]" || true)
  DS_BUILD_OPS=0 .venv/bin/pip install -q -c constraints.txt -e ".${extras}"
  touch "$stamp"
fi

if [[ $want_test == 1 ]]; then
  need=()
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
  command -v chromium >/dev/null || need+=(chromium)
  if (( ${#need[@]} )); then
    SUDO=$([[ $(id -u) == 0 ]] && true || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
