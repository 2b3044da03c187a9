"""GRPO on a mixture of domains, with TRL's ``GRPOTrainer``.

Read top to bottom:
1. the mixture sampler fixes the whole prompt schedule up front (``rl/sampler.py``);
2. the schedule becomes the trainer's dataset, consumed in order (no shuffling: order *is* the mixture);
3. one reward function routes each completion to its own domain's reward set;
4. a callback exports per-domain metrics and copies every checkpoint to the artifact store;
5. ``resume=True`` continues from the newest checkpoint, local or in the store.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from modomodo.config import ConfigError, ExperimentConfig
from modomodo.config_train import TrainConfig, VLLMConfig
from modomodo.data.prompts import render_prompt
from modomodo.data.schema import Example
from modomodo.policy.load import freeze_vision_tower, load_policy, load_weights, resolve_dtype, save_policy
from modomodo.rewards import RewardContext, RewardSet
from modomodo.rl.deepspeed_presets import deepspeed_config
from modomodo.rl.distributed import ensure_rendezvous_env, is_main_process
from modomodo.rl.safe_checkpoint import safe_deepspeed_loading
from modomodo.rl.sampler import Draw, mixture_schedule, realised_counts
from modomodo.store import validate_run_id

CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE_FILE = "trainer_state.json"
"""Written last into every checkpoint by HF's Trainer: its presence marks a complete checkpoint."""


@dataclass(frozen=True)
class TrainResult:
    """Summary of one RL update; written as ``train_summary.json`` next to the final model."""

    run_id: str
    mixture: dict[str, float]
    realised_counts: dict[str, int]
    steps: int
    resumed_from_step: int
    seconds: float
    model_dir: str
    log_history: list[dict[str, Any]]


class DomainRewards:
    """One TRL reward function that scores each completion with its own domain's reward set.

    Routing by the example's ``domain`` column keeps rewards declared per domain (no global table)
    and lets domains weight their parts differently. Per-domain means go to the trainer's log via
    TRL's ``log_metric`` hook, under ``reward/<domain>`` and ``accuracy/<domain>``.
    """

    __name__ = "domain_reward"  # TRL names the logged metric after the function

    def __init__(self, reward_sets: Mapping[str, RewardSet]):
        self.reward_sets = dict(reward_sets)

    def __call__(self, prompts, completions, domain, solution, answer_kind, options, log_metric=None, **_):
        totals, by_domain, acc_by_domain = [], defaultdict(list), defaultdict(list)
        for completion, d, sol, kind, opts in zip(
            completions, domain, solution, answer_kind, options, strict=True
        ):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            result = self.reward_sets[d].score(
                text, RewardContext(solution=sol, answer_kind=kind, options=tuple(opts))
            )
            totals.append(result.total)
            by_domain[d].append(result.total)
            acc_by_domain[d].append(task_part(result.parts))
        if log_metric is not None:
            for d in by_domain:
                log_metric(f"reward/{d}", sum(by_domain[d]) / len(by_domain[d]))
                log_metric(f"accuracy/{d}", sum(acc_by_domain[d]) / len(acc_by_domain[d]))
        return totals


def task_part(parts: Mapping[str, float]) -> float:
    """The task-success part of a reward breakdown (accuracy or IoU), format excluded."""
    task = [v for k, v in parts.items() if k != "format"]
    return max(task) if task else 0.0


@dataclass(frozen=True)
class Schedule:
    """What one RL update trains on: the resolved mixture and its prompt schedule, drawn once."""

    mixture: dict[str, float]
    """Weight per configured domain (``ExperimentConfig.resolved_mixture``)."""
    draws: list[Draw]
    """The sampler's draws, cut to whole steps: the trainer consumes them in this order."""
    steps: int
    """Optimizer steps the draws fill."""


def training_schedule(
    train: Mapping[str, Sequence[Example]], t: TrainConfig, mixture: Mapping[str, float]
) -> Schedule:
    """The draws of ``mixture`` under the settings ``t`` (``cfg.train``), cut to whole steps."""
    sizes = {d: len(train.get(d, ())) for d in mixture}
    draws = mixture_schedule(sizes, mixture, t.steps * t.prompts_per_step, t.seed, t.sampling)
    steps = len(draws) // t.prompts_per_step
    if steps == 0:
        raise ValueError("the mixture schedule is shorter than one step (a domain was exhausted at once)")
    return Schedule(dict(mixture), draws[: steps * t.prompts_per_step], steps)


def schedule_dataset(train: Mapping[str, Sequence[Example]], draws: Sequence[Draw]):
    """The trainer's dataset: the mixture schedule, one row per scheduled prompt, in order.

    It holds each draw's domain and index only; a row's prompt, image and answer are made from
    ``train[domain][index]`` when the trainer reads the row. With ``train`` reading the curated
    shards by index (:func:`~modomodo.data.curated.open_training_splits`), memory does not grow
    with the number of steps: a 20,000-step run of 16 prompts holds 320,000 (domain, index) pairs,
    not 320,000 images.
    """
    from datasets import Dataset, Image

    image = Image()  # decodes to a PIL image, as the dataset's Image column did

    def rows(batch: dict[str, list]) -> dict[str, list]:
        examples = [
            train[domain][index] for domain, index in zip(batch["domain"], batch["index"], strict=True)
        ]
        several = next((ex for ex in examples if ex.extra_images), None)
        if several is not None:  # the prompt holds one image; a config refuses multi-image layouts
            raise ValueError(
                f"domain {several.domain!r}: example {several.id} has {len(several.images)} images; "
                "GRPO trains on single-image examples only (as the paper); evaluate it as a benchmark"
            )
        return {
            # Plain-text content: TRL inserts the image placeholder before the text, as to_conversation does.
            "prompt": [[{"role": "user", "content": render_prompt(ex)}] for ex in examples],
            "image": [image.decode_example({"bytes": ex.image, "path": None}) for ex in examples],
            "domain": [ex.domain for ex in examples],
            "solution": [ex.solution for ex in examples],
            "answer_kind": [ex.answer_kind for ex in examples],
            "options": [list(ex.options) for ex in examples],
            "example_id": [ex.id for ex in examples],
        }

    scheduled = Dataset.from_dict({"domain": [d.domain for d in draws], "index": [d.index for d in draws]})
    return scheduled.with_transform(rows)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint under ``folder``. Complete means it holds ``trainer_state.json``,
    which HF's Trainer writes after the weights, optimizer and RNG states: a folder left by a save or
    a download that was killed half-way would otherwise win, and the Trainer would quietly restart
    its step count and optimizer from scratch on top of its weights."""
    found = sorted(
        (
            p
            for p in folder.glob(f"{CHECKPOINT_PREFIX}*")
            if p.name.removeprefix(CHECKPOINT_PREFIX).isdigit() and (p / TRAINER_STATE_FILE).is_file()
        ),
        key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)),
    )
    return found[-1] if found else None


def checkpoint_key(run_id: str, step: int) -> str:
    return f"runs/{run_id}/checkpoints/step-{step:08d}"


def restore_checkpoint(store, run_id: str, trainer_dir: Path) -> Path | None:
    """Bring the newest checkpoint of ``run_id`` from the store, unless a newer one is on disk.

    The ranks of one node share ``trainer_dir``: a lock lets the first download while the others
    wait and then find it on disk."""
    Path(trainer_dir).mkdir(parents=True, exist_ok=True)  # a fresh pod has no trainer folder yet
    with open(Path(trainer_dir) / ".restore.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _restore_checkpoint(store, run_id, trainer_dir)


def _restore_checkpoint(store, run_id: str, trainer_dir: Path) -> Path | None:
    local = latest_checkpoint(trainer_dir)
    keys = store.list_artifacts(f"runs/{run_id}/checkpoints/") if store is not None else []
    if not keys:
        return local
    remote_step = int(keys[-1].rsplit("-", 1)[-1])
    if local is not None and int(local.name.removeprefix(CHECKPOINT_PREFIX)) >= remote_step:
        return local
    target = trainer_dir / f"{CHECKPOINT_PREFIX}{remote_step}"
    # Download beside the target and rename it into place, so that a killed download never looks
    # like a checkpoint (a stale incomplete target from an earlier try is replaced).
    staging = trainer_dir / f".{target.name}.download"
    shutil.rmtree(staging, ignore_errors=True)
    store.get_dir(keys[-1], staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def grpo_args(cfg: ExperimentConfig, trainer_dir: Path, steps: int):
    """Map our config onto TRL's ``GRPOConfig`` (one optimizer step = prompts_per_step x G rollouts)."""
    from trl import GRPOConfig

    t = cfg.train
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rollouts = t.prompts_per_step * t.num_generations
    if rollouts % world:
        raise ValueError(
            f"prompts_per_step x num_generations ({rollouts}) must divide by WORLD_SIZE ({world})"
        )
    bf16 = resolve_dtype(cfg.policy.dtype) == torch.bfloat16
    return GRPOConfig(
        output_dir=str(trainer_dir),
        per_device_train_batch_size=rollouts // world,
        gradient_accumulation_steps=1,
        num_generations=t.num_generations,
        max_completion_length=t.max_completion_length,
        temperature=t.temperature,
        beta=t.beta,
        learning_rate=t.lr,
        lr_scheduler_type="linear",
        warmup_steps=int(round(t.warmup_ratio * steps)),
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        max_steps=steps,
        seed=t.seed,
        data_seed=t.seed,
        shuffle_dataset=False,  # the schedule's order is the mixture; never reshuffle it
        remove_unused_columns=False,
        save_strategy="steps",
        save_steps=t.checkpoint_every,
        save_total_limit=2,  # every checkpoint is kept in the store; the pod's disk holds the last two
        logging_steps=t.logging_steps,
        report_to="none",
        bf16=bf16,
        # Without a GPU, accelerate gives the ranks of a launched job a backend (gloo) only with
        # use_cpu; otherwise each rank of a CPU torchrun believes it is alone and trains all data.
        use_cpu=not torch.cuda.is_available(),
        deepspeed=deepspeed_config(t.deepspeed),
        disable_tqdm=True,
        log_completions=False,
        **vllm_args(t.vllm),
    )


def vllm_args(vllm: VLLMConfig) -> dict[str, Any]:
    """``GRPOConfig`` fields of ``train.vllm``: colocated vLLM generation, or TRL's defaults."""
    if not vllm.enabled:
        return {"use_vllm": False}
    return {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_gpu_memory_utilization": vllm.gpu_memory_utilization,
        "vllm_enable_sleep_mode": vllm.sleep_mode,
    }


def require_vllm(vllm: VLLMConfig) -> None:
    """With ``train.vllm.enabled``, fail before any model loads when this image has no vLLM."""
    if not vllm.enabled:
        return
    try:
        import vllm as _  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"train.vllm.enabled: vLLM generation is on but vllm cannot be imported here ({exc}); "
            "use the GPU image built with WITH_VLLM=1, or set train.vllm.enabled=false"
        ) from exc


def train_grpo(
    cfg: ExperimentConfig,
    train: Mapping[str, Sequence[Example]],
    base_model: Path,
    out_dir: Path,
    *,
    schedule: Schedule,
    run_id: str,
    reward_sets: Mapping[str, RewardSet],
    store=None,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Run GRPO from ``base_model`` on ``schedule`` (:func:`training_schedule`); save the final policy
    to ``out_dir/model``."""
    from trl import GRPOTrainer

    validate_run_id(run_id)  # it names the store keys of every checkpoint: fail before training
    start = time.perf_counter()
    require_vllm(cfg.train.vllm)
    if cfg.train.deepspeed:
        # DeepSpeed always joins a process group; a process no launcher started is rank 0 of 1.
        ensure_rendezvous_env()
    dataset = schedule_dataset(train, schedule.draws)
    trainer_dir = out_dir / "trainer"
    trainer_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = restore_checkpoint(store, run_id, trainer_dir) if resume else None
    # The base stays the model's name_or_path: TRL loads the KL reference from it.
    model, processor = load_policy(base_model, cfg.policy.dtype)
    if checkpoint:
        load_weights(model, checkpoint)
    if cfg.policy.freeze_vision:
        freeze_vision_tower(model)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[DomainRewards(reward_sets)],
        args=grpo_args(cfg, trainer_dir, schedule.steps),
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[CheckpointToStore(store, run_id), *callbacks],
    )
    # DeepSpeed would unpickle its checkpoint files with a full unpickler: load them restricted.
    with safe_deepspeed_loading() if cfg.train.deepspeed else nullcontext():
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    model_dir = out_dir / "model"
    # ZeRO-3 partitions the weights between the ranks: all of them take part in gathering them
    # (the model's own state dict holds empty placeholders), then rank 0 writes the model.
    weights = trainer.accelerator.get_state_dict(trainer.deepspeed) if trainer.is_deepspeed_enabled else None
    if is_main_process():
        save_policy(trainer.model, processor, model_dir, source=base_model, state_dict=weights)
    resumed = int(checkpoint.name.removeprefix(CHECKPOINT_PREFIX)) if checkpoint else 0
    return _summary(run_id, schedule, trainer.state, resumed, time.perf_counter() - start, out_dir)


def _summary(
    run_id: str, schedule: Schedule, state, resumed: int, seconds: float, out_dir: Path
) -> TrainResult:
    """The run's :class:`TrainResult`; rank 0 writes it to ``train_summary.json``."""
    result = TrainResult(
        run_id=run_id,
        mixture=schedule.mixture,
        realised_counts=realised_counts(schedule.draws),
        steps=state.global_step,
        resumed_from_step=resumed,
        seconds=seconds,
        model_dir=str(out_dir / "model"),
        log_history=state.log_history,
    )
    if is_main_process():
        (out_dir / "train_summary.json").write_text(
            json.dumps(asdict(result), indent=2, sort_keys=True) + "\n"
        )
    return result


class CheckpointToStore(TrainerCallback):
    """Copy each checkpoint the trainer saves into the artifact store (manifest last), so a pod that
    restarts on an empty disk can resume from it."""

    def __init__(self, store, run_id: str):
        self.store = store
        self.run_id = run_id

    def on_save(self, args, state, control, **kwargs):
        if self.store is None or not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{state.global_step}"
        self.store.put_dir(
            folder, checkpoint_key(self.run_id, state.global_step), metadata={"step": state.global_step}
        )
