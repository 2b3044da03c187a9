#!/usr/bin/env bash
# Creates .venv and installs modomodo into it; idempotent (a stamp skips a second install).
# Usage: scripts/bootstrap.sh [--test]   (--test also installs the test extras and the servers the tests start)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Plain `if`s, not `test && action`: under `set -e` a false test inside `$(...)` or as a script's
# last command is a failure, and the script would stop without a word.
want_test=0
if [[ "${1:-}" == "--test" ]]; then want_test=1; fi

if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
fresh() { [[ -f $1 && ! pyproject.toml -nt $1 && ! constraints.txt -nt $1 ]]; }
test_stamp=.venv/.modomodo-installed-test
# The postgres extra as in the images (images/install.sh): CI and images install the same set.
if (( want_test )); then stamp=$test_stamp extras="[postgres,test]"; else stamp=.venv/.modomodo-installed extras="[postgres]"; fi
# A test install includes the runtime install.
if ! fresh "$stamp" && ! fresh "$test_stamp"; then
  # pip's output (progress, its warnings) goes to a log; a failure shows its last lines.
  log=.venv/install.log
  : >"$log"
  quietly() {
    if ! "$@" >>"$log" 2>&1; then
      echo "bootstrap: '$*' failed; its last lines (all of it: $log):" >&2
      tail -n 30 "$log" >&2
      exit 1
    fi
  }
  echo "bootstrap: installing modomodo${extras} into .venv (minutes; log: $log)" >&2
  # torch first, from the CPU wheel; constraints.txt (the lock the images install from too) keeps
  # every later step on that build and pins every other package.
  quietly .venv/bin/pip install -c constraints.txt "$(grep -E '^torch==' constraints.txt)"
  DS_BUILD_OPS=0 quietly .venv/bin/pip install -c constraints.txt -e ".${extras}"
  touch "$stamp"
fi

if (( want_test )); then
  need=()
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
  command -v chromium >/dev/null || need+=(chromium)
  # Debian keeps PostgreSQL's server binaries out of $PATH (tests/servers.py looks there too).
  command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
  if (( ${#need[@]} )); then
    SUDO=$([[ $(id -u) == 0 ]] && true || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  scripts/fetch_tools.sh  # helm, kubectl, checkov into .tools/bin (the chart and manifest tests)
fi
