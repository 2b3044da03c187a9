"""Component: the RL update, GRPO on one mixture."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from modomodo.components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def rl_update(
    config: dict,
    mixture: dict,
    run_name: str,
    kind: str,
    store_uri: str,
    pushgateway: str,
    gpus: int,
    data: Input[Dataset],
    base_model: Input[Model],
    model: Output[Model],
    replicate: int = 0,
    nodes: int = 1,
    trainer_runtime: str = "torch-distributed",
    s3_secret: str = "",
    node_settings: dict = None,
) -> NamedTuple("RLUpdate", [("run", dict)]):
    """GRPO from ``base_model`` on ``mixture`` (``stages.rl_stage``) with seed ``train.seed +
    replicate``; returns the run (``run_id``, ``mixture``, ``kind``, ``seed``, ``steps``) for its
    run record.

    The run id is ``<experiment>-<run_name>-<hash of the inputs>``: checkpoints go to the artifact
    store under it, and the stage always resumes, so a retried pod continues from the newest
    checkpoint of the same inputs while a first attempt finds none. The final model is stored
    once, in the store under ``runs/<run id>/model``; the ``model`` artifact refers to it
    (``runtime.local_copy`` fetches it). ``gpus`` is the count the pod requests: one training
    process per GPU (torchrun when more than one), one on the CPU when 0.

    ``nodes`` > 1 runs the stage on that many nodes of ``gpus`` GPUs each, as a Kubeflow Trainer
    ``TrainJob`` on the ClusterTrainingRuntime ``trainer_runtime`` (``components/trainjob.py``); its
    nodes read the store with the Secret ``s3_secret`` and take image and placement from
    ``node_settings`` (``NodeSettings.to_dict()``, compiled in).
    """
    import json
    import shutil
    import tempfile
    from collections import namedtuple
    from pathlib import Path

    from modomodo import stages
    from modomodo.components import runtime
    from modomodo.mixture import pilots

    cfg = runtime.with_mixture(runtime.experiment_config(config, pushgateway), mixture)
    cfg = runtime.with_replicate_seed(cfg, replicate)
    runtime.check_gpus(gpus)
    replica = [replicate] if replicate else []  # replicate 0 keeps the run ids of earlier versions
    # Checkpoints of another world size do not resume (ZeRO partitions); one node keeps its ids.
    replica += [{"nodes": nodes}] if nodes > 1 else []
    run_id = (
        f"{cfg.name}-{run_name}-{runtime.fingerprint(config, mixture, *replica, data.uri, base_model.uri)}"
    )
    store = runtime.open_store(store_uri, cfg)
    rl_stage = stages.rl_stage
    if nodes > 1:
        from modomodo.components import trainjob

        rl_stage = trainjob.stage_on_nodes(
            nodes=nodes,
            gpus=gpus,
            runtime=trainer_runtime,
            s3_secret=s3_secret,
            settings=trainjob.NodeSettings.from_dict(node_settings or {}),
            data_hash=data.metadata.get("content_hash", ""),
        )
    with tempfile.TemporaryDirectory() as scratch:
        # A pilot that crashes, diverges or keeps losing its pod is recorded as failed, not fatal
        # (mixture.pilots.failed_run).
        try:
            pilots.give_up_on_lost_pilot(cfg, store, run_id, kind)
            result = rl_stage(
                cfg,
                Path(data.path),
                Path(base_model.path),
                Path(scratch),
                run_id=run_id,
                resume=True,
                store=store,
                metrics_port=runtime.metrics_port(),
                # A TrainJob runs torchrun itself; a pilot trains in a child process, so that an
                # out-of-memory kill of the training is a failed pilot, not a failed pipeline.
                **({} if nodes > 1 else {"processes": max(gpus, 1), "isolate": pilots.pilot_may_fail(kind)}),
            )
        except Exception as error:
            if not pilots.pilot_may_fail(kind):
                raise
            failed = pilots.failed_run(run_id, cfg, kind, error, Path(model.path))
            return namedtuple("RLUpdate", ["run"])(failed)
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
    return namedtuple("RLUpdate", ["run"])(run)
