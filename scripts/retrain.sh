#!/usr/bin/env bash
# Retrain on the last accepted mixture and gate the result (what .github/workflows/retrain.yml runs):
#   compile  the `train` pipeline for the preset (and image) into $BUILD_DIR
#   submit   it with the last accepted mixture of the experiment, and wait for the run to end
#   gate     fail when its Out-Score regressed beyond $TOLERANCE against the last accepted run;
#            otherwise make it the accepted run
# Usage: scripts/retrain.sh [compile|submit|gate|all]   (default all; each step exits non-zero on failure)
#
# Environment (see docs/retraining.md):
#   KFP_HOST        Kubeflow Pipelines endpoint (required for submit)
#   STORE_URI       artifact store of the runs, e.g. s3://modomodo/experiments (required for submit, gate)
#   PRESET          preset name or YAML file (default paper)
#   RUN_NAME        the run's name, unique per retrain: its report lands at reports/$RUN_NAME
#                   (default retrain-<UTC time>; set it when the steps run separately)
#   TOLERANCE       Out-Score the run may lose against the accepted run (default 0)
#   KFP_EXPERIMENT  KFP experiment (default modomodo-retrain)
#   GPUS, S3_SECRET, PUSHGATEWAY, MODOMODO_IMAGE, MODOMODO_GPU_IMAGE   run settings (see `modomodo compile|submit --help`)
#   WAIT_TIMEOUT, POLL_SECONDS   how long to follow the run (default 86400 s), how often (default 60 s)
#   KFP_TOKEN / KFP_TOKEN_FILE, KFP_CA_CERT (a file) or KFP_CA_PEM (its text)   authenticated endpoints
#   MODOMODO        the modomodo command (default: modomodo on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

step=${1:-all}
case $step in compile | submit | gate | all) ;; *)
  echo "usage: $0 [compile|submit|gate|all]" >&2
  exit 2
  ;;
esac
MODOMODO=${MODOMODO:-modomodo}
PRESET=${PRESET:-paper}
BUILD_DIR=${BUILD_DIR:-build/pipelines}
RUN_NAME=${RUN_NAME:-retrain-$(date -u +%Y%m%d-%H%M%S)}
need() {
  if [[ -z ${!1:-} ]]; then
    echo "retrain.sh: set $1 ($2)" >&2
    exit 2
  fi
}

if [[ $step == compile || $step == all ]]; then
  echo "== compile the train pipeline (preset $PRESET)"
  image=()
  if [[ -n ${MODOMODO_IMAGE:-} ]]; then image+=(--image "$MODOMODO_IMAGE"); fi
  if [[ -n ${MODOMODO_GPU_IMAGE:-} ]]; then image+=(--gpu-image "$MODOMODO_GPU_IMAGE"); fi
  # The GPU count is compiled into the package (0: every step on CPU nodes).
  "$MODOMODO" compile --output "$BUILD_DIR" --preset "$PRESET" --pipeline train --gpus "${GPUS:-1}" "${image[@]}"
fi

if [[ $step == submit || $step == all ]]; then
  need KFP_HOST "the Kubeflow Pipelines endpoint"
  need STORE_URI "the artifact store of the runs"
  if [[ -n ${KFP_CA_PEM:-} && -z ${KFP_CA_CERT:-} ]]; then
    KFP_CA_CERT=$(mktemp)
    printf '%s\n' "$KFP_CA_PEM" >"$KFP_CA_CERT"
    export KFP_CA_CERT
  fi
  echo "== the last accepted mixture"
  mixture=$("$MODOMODO" accepted --store-uri "$STORE_URI" --preset "$PRESET")
  # Before any accepted run the preset's own train.mixture trains (uniform when it has none).
  with_mixture=()
  if [[ $mixture != "{}" ]]; then with_mixture=(--set "train.mixture=$mixture"); fi
  echo "== submit $RUN_NAME and wait for it"
  "$MODOMODO" submit --host "$KFP_HOST" --store-uri "$STORE_URI" \
    --package "$BUILD_DIR/train.yaml" --preset "$PRESET" "${with_mixture[@]}" \
    --run-name "$RUN_NAME" --experiment "${KFP_EXPERIMENT:-modomodo-retrain}" \
    --s3-secret "${S3_SECRET:-modomodo-s3}" --pushgateway "${PUSHGATEWAY:-}" \
    --wait --timeout "${WAIT_TIMEOUT:-86400}" --poll "${POLL_SECONDS:-60}"
fi

if [[ $step == gate || $step == all ]]; then
  need STORE_URI "the artifact store of the runs"
  echo "== gate $RUN_NAME against the last accepted run"
  # A promoted run's scores go to the Pushgateway: the evaluation-regression alert's baseline.
  "$MODOMODO" gate --store-uri "$STORE_URI" --run "$RUN_NAME" --tolerance "${TOLERANCE:-0}" \
    --pushgateway "${PUSHGATEWAY:-}"
fi
