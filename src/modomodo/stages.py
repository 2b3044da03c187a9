"""The stages as plain functions: what each CLI command and each Kubeflow component calls.

Each stage reads its inputs from local folders, writes its outputs to a local folder, and (when a
store is configured) copies the heavy outputs into the artifact store, so the same function runs
in a local process, in kfp's local runner and in a pod on a cluster.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.data.schema import Example
from modomodo.metrics import StageMetrics, mixture_label
from modomodo.progress import progress_bar
from modomodo.rewards import RewardSet, RewardSpec
from modomodo.versions import versions

logger = logging.getLogger(__name__)


def reward_sets(cfg: ExperimentConfig) -> dict[str, RewardSet]:
    """Each training domain's reward set, as declared in its config (validated on construction)."""
    return {
        name: RewardSet(
            tuple(RewardSpec(r.name, r.weight) for r in dom.rewards), gate_on_format=dom.gate_on_format
        )
        for name, dom in cfg.data.domains.items()
    }


def check_reward_kinds(cfg: ExperimentConfig, train: Mapping[str, list[Example]]) -> None:
    """The config check of rewards against answer kinds, on the curated data (a domain read from a
    path has the answer kinds its rows have): before any model loads."""
    cfg.check_reward_kinds({domain: {e.answer_kind for e in examples} for domain, examples in train.items()})


def open_store(cfg: ExperimentConfig, workdir: Path):
    """The configured artifact store, or ``<workdir>/artifacts`` on local disk."""
    from modomodo.store import ArtifactStore

    return ArtifactStore.from_uri(cfg.store or str((workdir / "artifacts").resolve()))


def stage_metrics(
    cfg: ExperimentConfig, run_id: str, stage: str, mixture: Mapping[str, float] | None = None
) -> StageMetrics:
    """The metrics of one stage; ``mixture`` is what trained the policy the stage works on (none for
    data, base-policy and search stages: their ``mixture`` label stays empty)."""
    return StageMetrics(
        run=run_id, stage=stage, mixture=mixture_label(mixture or {}), gateway=cfg.pushgateway
    )


# 1. curate -------------------------------------------------------------------------------------


def benchmark_names(cfg: ExperimentConfig) -> list[str]:
    from modomodo.data.synthetic import BENCHMARKS

    names = cfg.data.benchmarks or sorted(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"data.benchmarks: unknown benchmarks {unknown}; known: {sorted(BENCHMARKS)}")
    return names


def source_specs(cfg: ExperimentConfig) -> dict:
    """The curate stage's inputs: every training domain (with its test split when it is also an
    in-domain benchmark), and every out-of-domain benchmark as a test-only source."""
    from modomodo.data.sources import SourceSpec
    from modomodo.data.synthetic import BENCHMARKS

    n_test = {b: max(1, round(BENCHMARKS[b].size * cfg.data.benchmark_scale)) for b in benchmark_names(cfg)}
    specs = {}
    for name, dom in cfg.data.domains.items():
        if dom.source == "synthetic":
            specs[name] = SourceSpec("synthetic", n_train=dom.n_train, n_test=n_test.get(name, 0))
        else:
            specs[name] = SourceSpec(
                "path",
                path=dom.source,
                answer_kind=dom.answer_kind or None,
                external_images=dom.external_images,
            )
            if name in n_test:  # the synthetic test split of another dataset would be meaningless
                logger.warning(
                    "data.domains.%s reads %s: the built-in benchmark %r is not curated (a path domain "
                    "has no test split here)",
                    name,
                    dom.source,
                    name,
                )
    for name, n in n_test.items():
        if name not in specs:
            specs[name] = SourceSpec("synthetic", n_test=n)
    return specs


def curate_stage(cfg: ExperimentConfig, out_dir: Path, *, run_id: str = "data"):
    """Curate every source into ``out_dir`` (shards, quarantine, ``curation.json``)."""
    from modomodo.data.curate import curate

    metrics = stage_metrics(cfg, run_id, "curate")
    with metrics.stage_timer():
        report = curate(source_specs(cfg), out_dir, seed=cfg.data.seed)
        metrics.record_data(report.rows, {d: sum(r.values()) for d, r in report.quarantined.items()})
    return report


def load_curated(data_dir: Path, benchmarks: list[str] | None = None) -> CuratedData:
    """Training splits of the training domains and test splits of the benchmarks, checksums verified.

    A benchmark counts towards the In-Score when the data trains on its domain, and towards the
    Out-Score otherwise: ``ref`` left out of ``data.domains`` is an out-of-domain test of the rest.
    """
    from modomodo.data.curate import CurationReport, read_curated
    from modomodo.data.synthetic import BENCHMARKS

    report = CurationReport.load(data_dir)
    train = {
        d: read_curated(data_dir, d, "train") for d in sorted(report.rows) if report.rows[d].get("train")
    }
    names = benchmarks or [b for b in sorted(report.rows) if b in BENCHMARKS and report.rows[b].get("test")]
    return CuratedData(
        train=train,
        benchmarks={b: read_curated(data_dir, b, "test") for b in names},
        splits={b: "in" if b in train else "out" for b in names},
    )


@dataclass(frozen=True)
class CuratedData:
    """A curated dataset read back from its folder."""

    train: dict[str, list[Example]]
    benchmarks: dict[str, list[Example]]
    splits: dict[str, str]
    """Benchmark -> ``in`` or ``out``."""


# 2. base policy --------------------------------------------------------------------------------


def tokenizer_corpus(data: CuratedData) -> list[str]:
    """Text the tiny model's BPE is trained on: training prompts and targets, benchmark prompts
    (never benchmark answers)."""
    from modomodo.data.prompts import reference_completion, render_prompt

    corpus = []
    for examples in data.train.values():
        corpus += [render_prompt(e) + "\n" + reference_completion(e) for e in examples]
    for examples in data.benchmarks.values():
        corpus += [render_prompt(e) for e in examples]
    return corpus


def base_policy_stage(cfg: ExperimentConfig, data_dir: Path, out_dir: Path, console=None) -> Path:
    """Build the base policy in ``out_dir``: the tiny model + SFT warm-start, or the configured
    pretrained model saved as is (optionally warm-started too)."""
    from modomodo.policy.image_reliance import image_reliance
    from modomodo.policy.load import freeze_vision_tower, load_policy, policy_device, save_policy
    from modomodo.policy.tiny import TinyModelSpec, build_tiny_model
    from modomodo.policy.warmstart import warm_start

    data = load_curated(data_dir)
    out_dir = Path(out_dir)
    source: Path | str = cfg.policy.model
    if cfg.policy.model == "tiny":
        spec = TinyModelSpec(
            hidden_size=cfg.policy.hidden_size,
            num_layers=cfg.policy.num_layers,
            vision_depth=cfg.policy.vision_depth,
            seed=cfg.sft.seed,
        )
        source = build_tiny_model(out_dir / "init", tokenizer_corpus(data), spec)
    model, processor = load_policy(source, "fp32", policy_device())
    if cfg.policy.freeze_vision:
        freeze_vision_tower(model)
    if not cfg.sft.enabled:
        save_policy(model, processor, out_dir / "model", source=source)
        return out_dir / "model"
    bar = progress_bar(console, "SFT warm-start", cfg.sft.steps)
    result = warm_start(
        model,
        processor,
        data.train,
        cfg.sft,
        out_dir / "model",
        source=source,
        on_step=(lambda step, loss: bar.update(step, f"loss {loss:.3f}")) if bar else None,
    )
    if bar:
        bar.close()
    reliance = {
        domain: image_reliance(model, processor, examples)
        for domain, examples in reliance_examples(data).items()
    }
    summary = {
        **asdict(result),
        "image_reliance": {d: {**asdict(r), "gap": r.gap} for d, r in reliance.items()},
    }
    (out_dir / "model" / "warmstart.json").write_text(json.dumps(summary, indent=2) + "\n")
    if console is not None:
        gaps = ", ".join(f"{d} {r.gap:+.3f}" for d, r in reliance.items())
        console.print(f"image reliance (loss with rotated images - with the right ones; ~0: blind): {gaps}")
    return out_dir / "model"


RELIANCE_EXAMPLES = 32
"""Examples per domain for the base policy's image-reliance check."""


def reliance_examples(data: CuratedData) -> dict[str, list[Example]]:
    """Per training domain, the examples to check image reliance on: its held-out test split when
    it is also an in-domain benchmark (same name), else its first training examples; a domain with
    fewer than two examples has no images to swap and is left out."""
    chosen = {d: (data.benchmarks.get(d) or data.train[d])[:RELIANCE_EXAMPLES] for d in sorted(data.train)}
    return {d: examples for d, examples in chosen.items() if len(examples) >= 2}


# 3. RL update ----------------------------------------------------------------------------------


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
):
    """GRPO on the configured mixture; checkpoints go to the store so a restarted pod resumes.

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
    from modomodo.rl.attempts import AttemptLog
    from modomodo.rl.callbacks import MetricsCallback, ProgressCallback
    from modomodo.rl.distributed import is_main_process, train_processes
    from modomodo.rl.grpo import train_grpo, training_schedule
    from modomodo.store import validate_run_id

    validate_run_id(run_id)  # names the store keys of every checkpoint: fail before any work
    out_dir = Path(out_dir)
    store = store if store is not None else open_store(cfg, out_dir.parent)
    if processes > 1 or isolate:
        return train_processes(cfg, data_dir, base_model, out_dir, run_id=run_id, processes=processes,
                               store_uri=store.uri, resume=resume, metrics_port=metrics_port)  # fmt: skip
    data = load_curated(data_dir)
    check_reward_kinds(cfg, data.train)
    # The one place the mixture is resolved and its schedule drawn: metrics and trainer share them.
    schedule = training_schedule(data.train, cfg.train, cfg.resolved_mixture())
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
                result = train_grpo(
                    cfg,
                    data.train,
                    Path(base_model),
                    out_dir,
                    schedule=schedule,
                    run_id=run_id,
                    reward_sets=reward_sets(cfg),
                    store=store,
                    resume=resume,
                    callbacks=callbacks,
                )
    finally:
        if server is not None:
            server.shutdown()
    if main:  # rank 0 saved the model
        check_finite_weights(Path(result.model_dir))
        (out_dir / "versions.json").write_text(json.dumps(versions(), indent=2, sort_keys=True) + "\n")
    return result


# Failed pilots: recorded with their reason and left out of the fit, so one pilot that crashes or
# diverges does not take the search down (docs/reliability.md). -----------------------------------

FAILED_RUN_FILE = "failed.json"
"""Written in place of a model by an RL update that failed; evaluation skips such a folder."""

FAULT_ENV = "MODOMODO_FAULT_INJECTION"
"""FAULT INJECTION, FOR TESTS ONLY: a JSON object ``{"<run name>": "crash" | "kill" | "nan"}``;
the RL update of the run whose id starts with ``<experiment>-<run name>-`` raises before training
(``crash``), is killed with SIGKILL as the out-of-memory killer would (``kill``), loses its whole
step as a dead node would (``lost``: the training process kills its parent, the step's process,
then itself, once it has logged its attempt) or ends with NaN in its weights (``nan``, what a
diverged run leaves). Never set it in production."""


class PilotFailure(RuntimeError):
    """An RL update that ended without a usable model (non-finite weights)."""


def injected_faults(cfg: ExperimentConfig, run_id: str) -> list:
    """The trainer callbacks of the fault :data:`FAULT_ENV` asks for on ``run_id`` (tests only)."""
    import os

    faults = json.loads(os.environ.get(FAULT_ENV) or "{}")
    fault = next((f for name, f in faults.items() if run_id.startswith(f"{cfg.name}-{name}-")), None)
    if fault == "crash":
        raise RuntimeError(f"fault injection ({FAULT_ENV}): run {run_id} crashed")
    if fault == "kill":  # what the out-of-memory killer does: no exception, no cleanup
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "lost":
        from transformers import TrainerCallback

        class LoseTheNode(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                import signal

                os.kill(os.getppid(), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)

        return [LoseTheNode()]
    if fault == "nan":
        from transformers import TrainerCallback

        class PoisonWeights(TrainerCallback):
            def on_train_end(self, args, state, control, model=None, **kwargs):
                import torch

                with torch.no_grad():
                    next(p for p in model.parameters() if p.requires_grad).fill_(float("nan"))

        return [PoisonWeights()]
    return []


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


def give_up_on_lost_pilot(cfg: ExperimentConfig, store, run_id: str, kind: str) -> None:
    """Raise :class:`PilotFailure` when the pilot ``run_id`` lost its pod ``search.pilot_lost_attempts``
    times (``rl.attempts``): a node that keeps dying under it, or a pod evicted or OOM-killed again
    and again, then costs a recorded failure rather than the pipeline (KFP fails a ``ParallelFor``
    whose iteration exhausts its retries). The final run (``kind`` ``model``) never gives up."""
    from modomodo.rl.attempts import AttemptLog

    lost = AttemptLog(store, run_id).lost()
    if pilot_may_fail(kind) and lost >= cfg.search.pilot_lost_attempts:
        raise PilotFailure(
            f"lost its pod {lost} times (search.pilot_lost_attempts={cfg.search.pilot_lost_attempts}): "
            "the node died, or the pod was evicted or killed before it could report"
        )


def pilot_may_fail(kind: str) -> bool:
    """Whether a failed RL update of this kind is recorded and skipped (pilots) rather than
    fatal (``model``: the final run on the chosen mixture)."""
    return kind != "model"


def failed_run(run_id: str, cfg: ExperimentConfig, kind: str, error: BaseException, model_dir: Path) -> dict:
    """The run of a failed RL update, with its reason; writes :data:`FAILED_RUN_FILE` to ``model_dir``."""
    reason = f"{type(error).__name__}: {error}"[:2000]
    run = {
        "run_id": run_id,
        "mixture": cfg.resolved_mixture(),
        "kind": kind,
        "seed": cfg.train.seed,
        "failed": reason,
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / FAILED_RUN_FILE).write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
    logger.error("pilot %s failed and is left out of the search: %s", run_id, reason)
    return run


def failed_pilots(rows: list[dict]) -> dict[str, str]:
    """``{run_id: reason}`` of the failed runs among run-record ``rows``."""
    return {row["run_id"]: row["failed"] for row in rows if row.get("failed")}


# 4. evaluate -----------------------------------------------------------------------------------


def evaluate_stage(
    cfg: ExperimentConfig,
    data_dir: Path,
    model_dir: Path,
    out_dir: Path,
    *,
    run_id: str = "",
    mixture: Mapping[str, float] | None = None,
    console=None,
):
    """Greedy evaluation of ``model_dir`` on every curated benchmark; ``mixture`` (what trained the
    model, if known) labels the metrics."""
    from modomodo.evaluation.evaluate import EvalResult, evaluate_policy
    from modomodo.policy.load import load_policy, policy_device

    if (Path(model_dir) / FAILED_RUN_FILE).is_file():  # a failed pilot: nothing to score
        return EvalResult([], None, None, cfg.eval.max_new_tokens)
    data = load_curated(data_dir)
    model, processor = load_policy(model_dir, cfg.policy.dtype, policy_device())
    metrics = stage_metrics(cfg, run_id or Path(out_dir).name, "evaluate", mixture)
    with metrics.stage_timer():
        result = evaluate_policy(
            model,
            processor,
            data.benchmarks,
            data.splits,
            cfg.eval,
            Path(out_dir),
            on_benchmark=(lambda name, score: console.print(f"  {name}: {score:.3f}")) if console else None,
        )
        metrics.record_eval(
            {s.benchmark: s.score for s in result.scores if s.split == "in"},
            {s.benchmark: s.score for s in result.scores if s.split == "out"},
            result.in_score,
            result.out_score,
        )
    return result


def generate_synthetic(cfg: ExperimentConfig, out_dir: Path, console=None) -> list[Path]:
    """Raw synthetic shards (``<out>/<name>/<split>.parquet``), uncurated: what a data source looks like."""
    from modomodo.data.shards import write_shard
    from modomodo.data.synthetic import generate

    shards = [
        (name, split, n)
        for name, spec in source_specs(cfg).items()
        if spec.kind == "synthetic"
        for split, n in (("train", spec.n_train), ("test", spec.n_test))
        if n
    ]
    bar = progress_bar(console, "generate", len(shards))
    written = []
    for name, split, n in shards:
        path = Path(out_dir) / name / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_shard(generate(name, split, n, cfg.data.seed), path)
        written.append(path)
        if bar:
            bar.update(len(written), f"{name}/{split}")
    if bar:
        bar.close()
    return written


# Mixture search: rollout profile, pilot plans, run records, surrogate, search, report ---------
# (what the Kubeflow components call; each takes and returns plain data or local folders)

BASELINE_SURROGATES = ("linear", "quadratic", "gp")
"""Surrogates cross-validated next to the configured one, so the report shows what each model buys."""


def rollout_stage(
    cfg: ExperimentConfig,
    data_dir: Path,
    model_dir: Path,
    out_dir: Path,
    *,
    run_id: str,
    prompts_per_domain: int = 0,
):
    """Profile the pass rates of ``model_dir`` on the training prompts (the first
    ``prompts_per_domain`` of each domain; 0 means all) with the RL update's sampling settings;
    writes ``pass_rates.json``."""
    from modomodo.policy.load import load_policy, policy_device
    from modomodo.rl.rollout import profile_pass_rates

    if prompts_per_domain < 0:
        raise ValueError(f"prompts_per_domain must be >= 0, got {prompts_per_domain}")
    data = load_curated(data_dir)
    check_reward_kinds(cfg, data.train)
    examples = [e for d in sorted(data.train) for e in data.train[d][: prompts_per_domain or None]]
    model, processor = load_policy(model_dir, cfg.policy.dtype, policy_device())
    metrics = stage_metrics(cfg, run_id, "rollout")
    with metrics.stage_timer():
        report = profile_pass_rates(
            model,
            processor,
            examples,
            reward_sets(cfg),
            num_generations=cfg.train.num_generations,
            temperature=cfg.train.temperature,
            max_new_tokens=cfg.train.max_completion_length,
            batch_size=max(1, cfg.eval.batch_size // cfg.train.num_generations),
            seed=cfg.train.seed,
        )
        metrics.record_pass_rates(report.pass_rates(), report.zero_signal_per_domain())
    report.save(Path(out_dir) / "pass_rates.json")
    return report


def score_columns(result) -> dict[str, float]:
    """An evaluation as run-record score columns: ``<benchmark>_score``, ``in_score``, ``out_score``."""
    scores = {f"{s.benchmark}_score": s.score for s in result.scores}
    for column, value in (("in_score", result.in_score), ("out_score", result.out_score)):
        if value is not None:
            scores[column] = value
    return scores


def run_record(run: dict, scores: dict[str, float]) -> dict:
    """The run record of a trained run: ``run`` is what the RL update reports (``run_id``,
    ``mixture``, ``kind``, ``seed``, ``steps``), ``scores`` its evaluation's score columns."""
    from modomodo.mixture.records import make_run_record

    if run.get("failed"):  # kept as a failed row: load_records leaves it out of the table
        return {key: run[key] for key in ("run_id", "kind", "failed")}
    metadata = {key: run[key] for key in ("kind", "seed", "steps")}
    return make_run_record(
        run["run_id"], run["mixture"], scores, {**metadata, "modomodo": versions()["modomodo"]}
    )


def pilot_item(run: str, mixture, kind: str, replicate: int = 0) -> dict:
    """One pilot to train, as the pipelines iterate over it (the key is ``run``, never ``name``:
    a ParallelFor item key called ``name`` resolves wrongly in kfp). Replicate ``k`` of a mixture
    trains with seed ``train.seed + k`` (see :func:`heuristic_pilots`)."""
    return {
        "run": run,
        "mixture": {d: float(w) for d, w in mixture.items()},
        "kind": kind,
        "replicate": replicate,
    }


def seed_pilots(cfg: ExperimentConfig) -> list[dict]:
    """The seed mixtures of the families in ``search.seeds``, recognised by their weights."""
    from modomodo.mixture.seeds import excluded_domain, is_uniform, seed_mixtures, single_domain

    family = {
        "single": lambda w: single_domain(w) is not None,
        "exclude_one": lambda w: excluded_domain(w) is not None,
        "uniform": is_uniform,
    }
    domains = list(cfg.data.domains)
    return [
        pilot_item(p.name, p.mixture, "seed")
        for p in seed_mixtures(domains)
        if any(family[f](p.mixture.vector(domains)) for f in cfg.search.seeds)
    ]


def heuristic_pilots(cfg: ExperimentConfig, records) -> list[dict]:
    """The paper's heuristic mixtures of ``search.heuristics``, computed from the seed runs in
    ``records``. A heuristic the seed runs cannot support is an error naming what it lacks (the
    heuristic wave of a pipeline has one pilot per configured heuristic). One that equals a mixture
    already run, or an earlier heuristic's, is trained again with the next seed: a replicate, which
    shows the surrogate the run-to-run noise (with the same seed it would repeat the run exactly)."""
    from modomodo.mixture.evidence import SAME_MIXTURE
    from modomodo.mixture.heuristics import HeuristicError, compute_heuristics

    found, failures = compute_heuristics(records, cfg.search.heuristics)
    if failures:
        problems = "; ".join(f"{name}: {why}" for name, why in failures.items())
        raise HeuristicError(f"search.heuristics: {problems} (search.seeds decides which seed runs exist)")
    trained = records.mixtures()
    pilots = []
    for h in found:
        replicate = sum(h.mixture.distance(m) < SAME_MIXTURE for m in trained)
        pilots.append(pilot_item(f"heuristic-{h.name.lower()}", h.mixture, "heuristic", replicate))
        trained.append(h.mixture)
    return pilots


def load_records(cfg: ExperimentConfig, rows: list[dict], previous: Path | None = None):
    """The run-records table: ``previous`` (a records CSV) plus ``rows``, over the config's
    domains; failed runs (:func:`failed_pilots`) are left out."""
    from modomodo.mixture.records import RunRecords, load_run_records

    domains = list(cfg.data.domains)
    rows = [row for row in rows if not row.get("failed")]
    if previous is None:
        return RunRecords.from_rows(rows, domains)
    records = load_run_records(previous, domains)
    return records.append(*rows) if rows else records


def loo_validation(cfg: ExperimentConfig, records, name: str):
    """Leave-one-out cross-validation of surrogate ``name`` on ``records[search.target]``."""
    from modomodo.mixture.quality import cross_validate
    from modomodo.mixture.surrogates import make_surrogate

    surrogate = make_surrogate(name, seed=cfg.search.seed)
    return cross_validate(surrogate, records.weights(), records.scores(cfg.search.target), folds=None)


class TooFewPilotsError(RuntimeError):
    """Fewer successful pilot runs than ``search.min_pilots``."""


def fit_surrogate_stage(
    cfg: ExperimentConfig, records, out_dir: Path, *, run_id: str, failed: Mapping[str, str] | None = None
) -> dict:
    """Fit the configured surrogate and the baselines to ``records[search.target]``, each
    cross-validated leave-one-out; writes ``records.csv``, ``surrogate.json`` (with ``trust``: is
    the configured model's held-out ranking better than chance) and ``cv.png`` (held-out
    predictions of the configured model). A baseline with too few runs is reported, not fatal; the
    configured model must fit. ``failed`` (run id -> reason: pilots left out) goes to
    ``surrogate.json``; with fewer than ``search.min_pilots`` runs nothing is fitted."""
    from modomodo.mixture.evidence import ranking_trust
    from modomodo.mixture.plots import plot_cross_validation
    from modomodo.mixture.surrogates import SurrogateError, make_surrogate
    from modomodo.report import write_json

    failed = dict(failed or {})
    if len(records) < cfg.search.min_pilots:
        reasons = "; ".join(f"{run}: {why}" for run, why in failed.items()) or "none recorded"
        raise TooFewPilotsError(
            f"only {len(records)} pilot runs succeeded, fewer than search.min_pilots="
            f"{cfg.search.min_pilots}; refusing to fit a surrogate (failed pilots: {reasons})"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records.write(out_dir / "records.csv")
    target, chosen = cfg.search.target, cfg.search.surrogate
    metrics = stage_metrics(cfg, run_id, "surrogate")
    summary: dict = {
        "target": target,
        "model": chosen,
        "runs": len(records),
        "failed": failed,
        "cv": {},
        "skipped": {},
    }
    with metrics.stage_timer():
        for name in dict.fromkeys([chosen, *BASELINE_SURROGATES]):
            try:
                validation = loo_validation(cfg, records, name)
            except SurrogateError as err:
                if name == chosen:
                    raise
                summary["skipped"][name] = str(err)
                continue
            summary["cv"][name] = {
                k: v for k, v in validation.to_dict().items() if k in ("scheme", "r2", "rmse", "spearman")
            }
            if name == chosen:
                plot_cross_validation(validation, out_dir / "cv.png", title=name)
                summary["trust"] = ranking_trust(
                    validation.actual, validation.predicted, cfg.search.trust_alpha
                ).to_dict()
        fitted = make_surrogate(chosen, seed=cfg.search.seed).fit(records.weights(), records.scores(target))
        summary["fit"] = fitted.describe(list(records.domains))
        metrics.record_surrogate({name: cv["r2"] for name, cv in summary["cv"].items()})
    write_json(out_dir / "surrogate.json", summary)
    return summary


def search_stage(
    cfg: ExperimentConfig, records, out_dir: Path, *, mode: str, k: int, storage: str | None, run_id: str
):
    """Optuna over the simplex on the configured surrogate: ``best`` mixtures to train, or the next
    pilots to ``explore``. The study lives in ``storage`` (an RDB URL), else in ``out_dir/study.db``.
    In ``best`` mode the surrogate must first rank the pilots better than chance (leave-one-out,
    ``search.trust_alpha``); when it does not, the best pilots are proposed instead and
    ``decision`` says why. Writes ``proposals.json`` and ``simplex.png`` (the fitted surface around
    the top proposal)."""
    from modomodo.mixture.plots import plot_simplex_slices
    from modomodo.mixture.search import SearchConfig, propose, resolve_storage
    from modomodo.report import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SearchConfig(
        n_trials=cfg.search.trials,
        seed=cfg.search.seed,
        storage=resolve_storage(storage or out_dir / "study.db"),
    )
    metrics = stage_metrics(cfg, run_id, "search")
    with metrics.stage_timer():
        found = propose(records, cfg.search.target, k=k, mode=mode, model=cfg.search.surrogate, config=config)
        if not found.proposals:
            raise ValueError(
                f"the {mode} search proposed no mixture (min_distance {config.min_distance} rules all out)"
            )
        if mode == "best":
            found = _trusted_or_best_pilots(cfg, records, found, k)
        metrics.record_search(found.proposals[0].mean, cfg.search.trials)
    plot_simplex_slices(
        found.surrogate,
        list(records.domains),
        out_dir / "simplex.png",
        anchor=found.proposals[0].mixture,
        observed=records.weights(),
    )
    write_json(out_dir / "proposals.json", found.to_dict())
    return found


def _trusted_or_best_pilots(cfg: ExperimentConfig, records, found, k: int):
    """``found`` with its ``decision``: kept when the surrogate ranks held-out pilots better than
    chance, else replaced by the ``k`` best pilot mixtures (a surrogate that cannot rank the runs
    it was fitted on has no claim on a mixture it never saw)."""
    from dataclasses import replace

    from modomodo.mixture.evidence import observed_mixtures, ranking_trust
    from modomodo.mixture.search import Proposal

    validation = loo_validation(cfg, records, cfg.search.surrogate)
    trust = ranking_trust(validation.actual, validation.predicted, cfg.search.trust_alpha)
    if trust.trusted:
        return replace(
            found, decision={"path": "surrogate", "reason": trust.reason, "trust": trust.to_dict()}
        )
    nan = float("nan")
    best = [
        Proposal(o.mixture, o.mean, nan, nan, nan, o.mean, "best pilot")
        for o in observed_mixtures(records, cfg.search.target)[:k]
    ]
    reason = f"{trust.reason}; the best pilot is trained instead of the surrogate's optimum"
    return replace(
        found, proposals=best, decision={"path": "best-pilot", "reason": reason, "trust": trust.to_dict()}
    )


def report_stage(
    cfg: ExperimentConfig,
    out_dir: Path,
    *,
    run_id: str,
    base_scores: dict[str, float],
    final_run: dict,
    final_scores: dict[str, float],
    final_label: str = "chosen",
    records_csv: Path | None = None,
    surrogate_dir: Path | None = None,
    search_dir: Path | None = None,
    profile_dir: Path | None = None,
) -> Path:
    """Write ``report.html`` and ``report.json`` into ``out_dir``: base against the final run
    (``final_run`` as the RL update reports it) and, after a search, against the uniform and best
    pilots, with the surrogate's quality, the proposals and the plots."""
    from modomodo.data.synthetic import BENCHMARKS
    from modomodo.mixture.evidence import seed_noise
    from modomodo.mixture.records import load_run_records
    from modomodo.report import Contender, Plot, ReportData, build_report, compare

    records = load_run_records(records_csv, list(cfg.data.domains)) if records_csv else None
    search = json.loads((Path(search_dir) / "proposals.json").read_text()) if search_dir else None
    final = Contender(final_label, final_run["run_id"], final_run["mixture"], dict(final_scores))
    plots = []
    if surrogate_dir is not None:
        plots.append(
            Plot(
                "Surrogate: held-out prediction against actual score",
                f"{cfg.search.surrogate} surrogate, leave-one-out; one point a pilot run.",
                Path(surrogate_dir) / "cv.png",
            )
        )
    if search_dir is not None:
        plots.append(
            Plot(
                "Predicted score over the simplex",
                "2-D slices through the chosen mixture (red star); white dots are pilot runs projected onto each slice.",
                Path(search_dir) / "simplex.png",
            )
        )
    data = ReportData(
        experiment=cfg.name,
        target=cfg.search.target,
        domains=tuple(cfg.data.domains),
        splits={b: BENCHMARKS[b].split for b in benchmark_names(cfg)},
        contenders=compare(cfg.search.target, base_scores, final, records),
        pilots=records,
        surrogate=json.loads((Path(surrogate_dir) / "surrogate.json").read_text()) if surrogate_dir else None,
        proposals=search["proposals"] if search else [],
        decision=search.get("decision") if search else None,
        seed_noise=seed_noise(records, cfg.search.target, cfg.search.seed_noise),
        pass_rates=json.loads((Path(profile_dir) / "pass_rates.json").read_text()) if profile_dir else None,
        plots=tuple(plots),
        settings={
            "RL steps per run": cfg.train.steps,
            "prompts per step x generations": f"{cfg.train.prompts_per_step} x {cfg.train.num_generations}",
            "RL seed": cfg.train.seed,
            "seed families": ", ".join(cfg.search.seeds) if records is not None else "–",
            "heuristics": ", ".join(cfg.search.heuristics) or "none",
            "surrogate": cfg.search.surrogate,
            "search trials": cfg.search.trials,
            "active rounds": cfg.search.rounds,
        },
        versions=versions(),
    )
    metrics = stage_metrics(cfg, run_id, "report", final_run["mixture"])
    with metrics.stage_timer():
        page = build_report(data, Path(out_dir))
        # The chosen mixture is the search's first proposal (the final run trains on it).
        predicted = {search["target"]: search["proposals"][0]["mean"]} if search else None
        metrics.record_final(final_scores, predicted)
    # The pipeline has ended: its run groups leave the Pushgateway (Prometheus keeps the history).
    metrics.end_pipeline(cfg.name)
    return page
