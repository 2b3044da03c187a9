#!/usr/bin/env bash
# Installs modomodo into a virtual environment exactly as both images do, from the one lock
# (constraints.txt) that CI also installs with. The Dockerfiles run it; tests/test_images.py runs it
# the same way in a fresh venv and checks that `modomodo compile` works there.
#
# Run from a folder holding pyproject.toml and constraints.txt (and, for `app`, the source):
#   images/install.sh deps VENV        torch, then the runtime dependencies named in pyproject.toml
#                                      (plus EXTRAS), without the package: a layer the source
#                                      does not invalidate
#   images/install.sh app VENV         the package itself (--no-deps: its dependencies are above),
#                                      then `pip check`
#   images/install.sh wheels VENV DIR  GPU builder: wheels of the CUDA extensions that need nvcc
#                                      (DeepSpeed's ops, flash-attention) into DIR
# Environment:
#   PYTHON            interpreter that creates VENV when it does not exist (default python3)
#   TORCH_INDEX_URL   index of the torch wheel; empty: pip's configured indexes (PyPI's torch is the
#                     CUDA build, the CPU image passes PyTorch's CPU index)
#   EXTRAS            extras of pyproject.toml to install (comma-separated; default postgres)
#   EXTRA_WHEELS      folder of prebuilt wheels installed before the dependencies (from `wheels`)
#   WITH_VLLM         1: also install vllm==VLLM_VERSION under the lock (GPU image only)
#   DEEPSPEED_OPS     `wheels`: DeepSpeed ops to compile ahead of time (space-separated names of its
#                     DS_BUILD_<NAME> switches, e.g. "FUSED_ADAM CPU_ADAM"; empty: no DeepSpeed wheel)
#   FLASH_ATTN_VERSION  `wheels`: flash-attn release to build (empty: none)
set -euo pipefail

usage() {
  echo "usage: images/install.sh deps|app VENV  |  images/install.sh wheels VENV DIR" >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
phase=$1 venv=$2
lock=constraints.txt
for file in pyproject.toml "$lock"; do
  if [[ ! -f $file ]]; then
    echo "install.sh: $file not found in $(pwd): run it from the folder that holds the project" >&2
    exit 2
  fi
done

if [[ ! -x $venv/bin/python ]]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -c "$lock")

# torch alone and first, without its dependencies: an index such as PyPI's CPU-only one holds torch
# but not every locked version of its dependencies, which the next install takes from the lock.
install_torch() {
  local spec
  spec=$(grep -E '^torch==' "$lock") || {
    echo "install.sh: $lock pins no torch" >&2
    exit 1
  }
  "${pip[@]}" --no-deps ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$spec"
}

case $phase in
  deps)
    install_torch
    if [[ -n ${EXTRA_WHEELS:-} ]] && compgen -G "$EXTRA_WHEELS/*.whl" >/dev/null; then
      "${pip[@]}" --no-deps "$EXTRA_WHEELS"/*.whl
    fi
    requirements=$(mktemp)
    trap 'rm -f "$requirements"' EXIT
    # The runtime dependencies as pyproject.toml declares them; the lock fixes their versions.
    "$venv/bin/python" - "${EXTRAS-postgres}" >"$requirements" <<'EOF'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = [e for e in sys.argv[1].split(",") if e]
unknown = sorted(set(extras) - set(project.get("optional-dependencies", {})))
if unknown:
    sys.exit(f"install.sh: pyproject.toml has no extras {unknown}")
print("\n".join(project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]))
EOF
    if [[ ${WITH_VLLM:-0} == 1 ]]; then
      echo "vllm==${VLLM_VERSION:?WITH_VLLM=1 needs VLLM_VERSION}" >>"$requirements"
    fi
    # DeepSpeed ships as source: without prebuilt ops it builds as pure Python (ops JIT-compile).
    DS_BUILD_OPS=0 "${pip[@]}" -r "$requirements"
    ;;
  app)
    # No build isolation: setuptools is in the venv (a locked dependency of torch), so building
    # the package needs no index.
    "${pip[@]}" --no-deps --no-build-isolation .
    "$venv/bin/python" -m pip check
    ;;
  wheels)
    [[ $# -eq 3 ]] || usage
    out=$3
    mkdir -p "$out"
    install_torch
    # What the extensions' setup scripts import while they build (locked versions).
    "${pip[@]}" "$(grep -E '^torch==' "$lock")" ninja packaging psutil py-cpuinfo numpy einops setuptools wheel
    if [[ -n ${DEEPSPEED_OPS:-} ]]; then
      switches=()
      for op in $DEEPSPEED_OPS; do switches+=("DS_BUILD_$op=1"); done
      # --no-cache-dir: a wheel pip built earlier without the ops would otherwise be reused.
      env DS_BUILD_OPS=0 "${switches[@]}" "$venv/bin/python" -m pip wheel --disable-pip-version-check \
        --no-cache-dir -c "$lock" --no-deps --no-build-isolation -w "$out" "$(grep -E '^deepspeed==' "$lock")"
    fi
    if [[ -n ${FLASH_ATTN_VERSION:-} ]]; then
      MAX_JOBS=${MAX_JOBS:-4} "$venv/bin/python" -m pip wheel --disable-pip-version-check \
        --no-cache-dir -c "$lock" --no-deps --no-build-isolation -w "$out" "flash-attn==$FLASH_ATTN_VERSION"
    fi
    ;;
  *) usage ;;
esac
