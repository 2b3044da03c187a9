"""The bodies of the ``rl_update`` and ``train_and_evaluate`` components: GRPO on one mixture,
with the run's identity, its placement (one pod or a TrainJob on several nodes) and the recording
of a failed pilot; ``train_and_evaluate`` also scores the model and makes its run record.

Kept out of the component modules so that the compiled components stay thin wrappers and this
code is one module the pod-entry and pipeline tests exercise."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modomodo import stages
from modomodo.components import runtime
from modomodo.config import ExperimentConfig
from modomodo.mixture import pilots


def run_id_of(
    cfg: ExperimentConfig, run_name: str, inputs: tuple[Any, ...], replicate: int, nodes: int
) -> str:
    """``<experiment>-<run_name>-<hash of the inputs>``: the same inputs resume the same checkpoints.
    Replicate 0 keeps the ids of earlier versions; checkpoints of another world size do not resume
    (ZeRO partitions), so more than one node is part of the hash and one node keeps its ids."""
    replica = [replicate] if replicate else []
    replica += [{"nodes": nodes}] if nodes > 1 else []
    return f"{cfg.name}-{run_name}-{runtime.fingerprint(*inputs[:2], *replica, *inputs[2:])}"


def placed_stage(gpus: int, nodes: int, trainer_runtime: str, s3_secret: str, node_settings, data):
    """``stages.rl_stage`` in this pod, or on ``nodes`` nodes as a Kubeflow Trainer TrainJob."""
    if nodes <= 1:
        return stages.rl_stage
    from modomodo.components import trainjob

    return trainjob.stage_on_nodes(
        nodes=nodes,
        gpus=gpus,
        runtime=trainer_runtime,
        s3_secret=s3_secret,
        settings=trainjob.NodeSettings.from_dict(node_settings or {}),
        data_hash=data.metadata.get("content_hash", ""),
    )


def rl_update_run(
    config: dict,
    mixture: dict,
    run_name: str,
    kind: str,
    store_uri: str,
    pushgateway: str,
    gpus: int,
    data,
    base_model,
    model,
    *,
    replicate: int,
    nodes: int,
    trainer_runtime: str,
    s3_secret: str,
    node_settings: dict | None,
    evaluate_to: Path | None = None,
) -> dict:
    """Train, store the model once (``runs/<run id>/model``; the ``model`` artifact refers to it)
    and return the run (``run_id``, ``mixture``, ``kind``, ``seed``, ``steps``); a pilot that
    crashes, diverges or keeps losing its pod returns its failed run instead (``failed.json``).
    ``evaluate_to``: the training process then evaluates the model into that folder."""  # fmt: skip
    cfg = runtime.with_mixture(runtime.experiment_config(config, pushgateway), mixture)
    cfg = runtime.with_replicate_seed(cfg, replicate)
    runtime.check_gpus(gpus)
    run_id = run_id_of(cfg, run_name, (config, mixture, data.uri, base_model.uri), replicate, nodes)
    store = runtime.open_store(store_uri, cfg)
    rl_stage = placed_stage(gpus, nodes, trainer_runtime, s3_secret, node_settings, data)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            pilots.give_up_on_lost_pilot(cfg, store, run_id, kind)
            result = rl_stage(
                cfg, Path(data.path), Path(base_model.path), Path(scratch), run_id=run_id, resume=True,
                store=store, metrics_port=runtime.metrics_port(), evaluate_to=evaluate_to,
                # A TrainJob runs torchrun itself; a pilot trains in a child process, so that an
                # out-of-memory kill of the training is a failed pilot, not a failed pipeline.
                **({} if nodes > 1 else {"processes": max(gpus, 1), "isolate": pilots.pilot_may_fail(kind)}),
            )  # fmt: skip
        except Exception as error:
            if not pilots.pilot_may_fail(kind):
                raise
            return pilots.failed_run(run_id, cfg, kind, error, Path(model.path))
        run = {
            "run_id": run_id,
            "mixture": result.mixture,
            "kind": kind,
            "seed": cfg.train.seed,
            "steps": result.steps,
        }
        out = Path(result.model_dir)
        for name in ("train_summary.json", "versions.json"):
            shutil.copy(Path(scratch) / name, out / name)
        (out / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
        small = ("run.json", "train_summary.json", "versions.json")  # kept in the artifact too
        url = runtime.store_by_reference(store, out, f"runs/{run_id}/model", run, model, keep=small)
    runtime.annotate(model, cfg, **run, store_url=url, resumed_from_step=result.resumed_from_step)
    return run


def train_and_evaluate_run(
    config: dict, pushgateway: str, model, metrics, samples, **update: Any
) -> tuple[dict, dict[str, float], dict]:
    """:func:`rl_update_run` (``update``: its other arguments) whose training process then
    evaluates the model into the ``samples`` artifact; returns the run, its score columns (logged
    on ``metrics`` too) and its run record. A failed pilot has no scores; its record says why."""
    from modomodo.components.model_steps import record_scores
    from modomodo.evaluation.evaluate import EvalResult

    run = rl_update_run(
        config, pushgateway=pushgateway, model=model, evaluate_to=Path(samples.path), **update
    )
    cfg = runtime.experiment_config(config, pushgateway)
    if run.get("failed"):  # nothing was evaluated
        result = EvalResult([], None, None, cfg.eval.max_new_tokens)
    else:
        result = EvalResult.read(Path(samples.path))
    scores = record_scores(cfg, run, result, metrics, samples)
    return run, scores, pilots.run_record(run, scores)
