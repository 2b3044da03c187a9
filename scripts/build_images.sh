#!/usr/bin/env bash
# Builds (and with --push, pushes) modomodo's two images, tagged with the package version so that
# the components' default base_image (modomodo.components) names exactly these tags:
#   $REGISTRY/modomodo:<version>       images/cpu.Dockerfile   (the light steps)
#   $REGISTRY/modomodo-gpu:<version>   images/gpu.Dockerfile   (the GPU steps)
# Usage: scripts/build_images.sh [--push] [--dry-run] [--only cpu|gpu] [--build-arg NAME=VALUE]...
#   --dry-run     print the docker commands instead of running them (no daemon needed)
#   --only        build one image
#   --build-arg   passed to every build (e.g. WITH_VLLM=1 for the GPU image; docs/images.md)
# Environment: REGISTRY (default ghcr.io/modomodo), DOCKER (default docker),
#   SOURCE_DATE_EPOCH (the creation date label; default: now).
set -euo pipefail
cd "$(dirname "$0")/.."

push=0 dry_run=0 only=""
build_args=()
while (($#)); do
  case $1 in
    --push) push=1 ;;
    --dry-run) dry_run=1 ;;
    --only)
      only=${2:-}
      if [[ $only != cpu && $only != gpu ]]; then
        echo "build_images: --only takes cpu or gpu, not '${only}'" >&2
        exit 2
      fi
      shift
      ;;
    --build-arg)
      if [[ ${2:-} != *=* ]]; then
        echo "build_images: --build-arg takes NAME=VALUE, not '${2:-}'" >&2
        exit 2
      fi
      build_args+=(--build-arg "$2")
      shift
      ;;
    *)
      echo "build_images: unknown argument '$1' (see the usage at the top of $0)" >&2
      exit 2
      ;;
  esac
  shift
done

PY=${PYTHON:-python3}
version=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
registry=${REGISTRY:-ghcr.io/modomodo}
registry=${registry%/}
docker=${DOCKER:-docker}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ $revision != unknown && -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  revision+="-dirty"
fi
created=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%dT%H:%M:%SZ)

run() {
  if ((dry_run)); then
    printf '%q ' "$@" | sed 's/ $//'
    echo
  else
    "$@"
  fi
}

declare -A image=([cpu]="$registry/modomodo:$version" [gpu]="$registry/modomodo-gpu:$version")
for kind in cpu gpu; do
  if [[ -n $only && $only != "$kind" ]]; then continue; fi
  run "$docker" build -f "images/$kind.Dockerfile" -t "${image[$kind]}" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
    "${build_args[@]}" .
  if ((push)); then run "$docker" push "${image[$kind]}"; fi
done
# The pipelines compile against the release tags by default; another registry needs them named.
if [[ $registry != ghcr.io/modomodo ]]; then
  echo "compile against these images: modomodo compile --image ${image[cpu]} --gpu-image ${image[gpu]}" >&2
fi
