"""The stages as plain functions: what each CLI command and each Kubeflow component calls.

Each stage reads its inputs from local folders, writes its outputs to a local folder, and (when a
store is configured) copies the heavy outputs into the artifact store, so the same function runs
in a local process, in kfp's local runner and in a pod on a cluster. One module per stage; what a
stage uses but is not one lives with its owner (curated data in ``data.curated``, reward sets in
``rewards.domains``, pilot plans and run records in ``mixture.pilots``).
"""

from __future__ import annotations

from modomodo.stages.base_policy import base_policy_stage
from modomodo.stages.curate import curate_stage, generate_synthetic
from modomodo.stages.evaluate import evaluate_stage
from modomodo.stages.report import report_stage
from modomodo.stages.rl import rl_stage
from modomodo.stages.rollout import rollout_stage
from modomodo.stages.search import search_stage
from modomodo.stages.surrogate import fit_surrogate_stage

__all__ = [
    "base_policy_stage",
    "curate_stage",
    "evaluate_stage",
    "fit_surrogate_stage",
    "generate_synthetic",
    "report_stage",
    "rl_stage",
    "rollout_stage",
    "search_stage",
]
