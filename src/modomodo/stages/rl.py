"""Stage 3, the RL update: GRPO on one mixture, checkpointed to the store so a restarted pod resumes."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.data.curated import open_training_splits
from modomodo.mixture.pilots import PilotFailure
from modomodo.rewards.domains import reward_sets
from modomodo.stages.common import check_reward_kinds, local_store, stage_metrics
from modomodo.stages.faults import injected_faults
from modomodo.versions import versions


def rl_stage(
    cfg: ExperimentConfig,
    data_dir: Path,
    base_model: Path,
    out_dir: Path,
    *,
    run_id: str,
    resume: bool = False,
    store=None,
    console=None,
    metrics_port: int = 0,
    processes: int = 1,
    isolate: bool = False,
    evaluate_to: Path | None = None,
):
    """GRPO on the configured mixture; checkpoints go to the store so a restarted pod resumes.

    With ``evaluate_to`` the process that trained the model (rank 0) then evaluates it
    (:func:`~modomodo.stages.evaluate.evaluate_stage`, its ``scores.json`` and ``samples.jsonl`` in
    that folder): a pipeline's pilot needs no second process that imports the ML stack again and
    loads the model from the store. A failed evaluation fails the training process, so an isolated
    pilot whose evaluation crashes is a failed pilot too.

    ``isolate`` trains in a child process even with one process: when the kernel's out-of-memory
    killer (or anything else) kills the training, this process lives on to say so
    (``rl.distributed.ChildFailed``), so a pilot can be recorded as failed instead of taking its
    pod, and the pipeline, down.

    With ``metrics_port`` the run also serves its live metrics on ``/metrics`` of that port until
    it ends, for a Prometheus that scrapes pods (the Pushgateway gets them either way). With
    ``processes`` > 1 it runs as that many ranks on this node (one per GPU, through torchrun);
    rank 0 writes the outputs, serves and pushes the metrics and keeps the attempt log
    (``rl.attempts``: the failures of earlier attempts, lost pods included, continue the counter).
    """
    from modomodo.rl.distributed import is_main_process, train_processes
    from modomodo.store import validate_run_id

    validate_run_id(run_id)  # names the store keys of every checkpoint: fail before any work
    out_dir = Path(out_dir)
    store = store if store is not None else local_store(cfg, out_dir.parent)
    if processes > 1 or isolate:
        return train_processes(cfg, data_dir, base_model, out_dir, run_id=run_id, processes=processes,
                               store_uri=store.uri, resume=resume, metrics_port=metrics_port,
                               evaluate_to=evaluate_to)  # fmt: skip
    result = _train_here(
        cfg, data_dir, Path(base_model), out_dir, run_id, store, resume, console, metrics_port
    )
    if evaluate_to is not None and is_main_process():
        from modomodo.stages.evaluate import evaluate_stage

        evaluate_stage(cfg, data_dir, Path(result.model_dir), Path(evaluate_to), run_id=run_id,
                       mixture=result.mixture, console=console)  # fmt: skip
    return result


def _train_here(cfg, data_dir, base_model, out_dir, run_id, store, resume, console, metrics_port):
    """:func:`rl_stage` in this process (one of the ranks of a launched job, or alone)."""
    from modomodo.rl.attempts import AttemptLog
    from modomodo.rl.callbacks import MetricsCallback, ProgressCallback
    from modomodo.rl.distributed import is_main_process
    from modomodo.rl.grpo import train_grpo, training_schedule

    train = open_training_splits(data_dir)  # read by index: memory does not grow with the steps
    check_reward_kinds(cfg, train)
    # The one place the mixture is resolved and its schedule drawn: metrics and trainer share them.
    schedule = training_schedule(train, cfg.train, cfg.resolved_mixture())
    metrics = stage_metrics(cfg, run_id, "train", schedule.mixture)
    metrics.record_mixture(schedule.mixture)
    callbacks = [MetricsCallback(metrics, schedule.draws, cfg.train.prompts_per_step)]
    if console is not None:
        callbacks.append(ProgressCallback(console))
    callbacks += injected_faults(cfg, run_id)
    main = is_main_process()
    server = metrics.serve(metrics_port) if metrics_port and main else None
    try:
        with AttemptLog(store, run_id).track() if main else nullcontext(0) as earlier_failures:
            if earlier_failures:  # at once: this attempt may be killed too
                metrics.record_earlier_failures(earlier_failures)
                metrics.push()
            with metrics.stage_timer(push=main):
                result = train_grpo(cfg, train, base_model, out_dir, schedule=schedule, run_id=run_id,
                                    reward_sets=reward_sets(cfg), store=store, resume=resume,
                                    callbacks=callbacks)  # fmt: skip
    finally:
        if server is not None:
            server.shutdown()
    if main:  # rank 0 saved the model
        check_finite_weights(Path(result.model_dir))
        (out_dir / "versions.json").write_text(json.dumps(versions(), indent=2, sort_keys=True) + "\n")
    return result


def check_finite_weights(model_dir: Path) -> None:
    """Raise :class:`PilotFailure` when a trained model holds NaN or infinite weights (a diverged
    run would otherwise be evaluated and fitted as if it were a mixture's effect)."""
    import torch
    from safetensors import safe_open

    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(path, framework="pt") as tensors:
            for key in tensors.keys():  # noqa: SIM118 (safe_open is not a mapping)
                tensor = tensors.get_tensor(key)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    bad = int((~torch.isfinite(tensor)).sum())
                    raise PilotFailure(f"training diverged: {bad} NaN/inf values in {key} ({path.name})")
