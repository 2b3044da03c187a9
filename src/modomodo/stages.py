"""The stages as plain functions: what each CLI command and each Kubeflow component calls.

Each stage reads its inputs from local folders, writes its outputs to a local folder, and (when a
store is configured) copies the heavy outputs into the artifact store, so the same function runs
in a local process, in kfp's local runner and in a pod on a cluster.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.data.schema import Example
from modomodo.metrics import StageMetrics, mixture_label
from modomodo.rewards import RewardSet, RewardSpec
from modomodo.versions import versions


def reward_sets(cfg: ExperimentConfig) -> dict[str, RewardSet]:
    """Each training domain's reward set, as declared in its config (validated on construction)."""
    return {
        name: RewardSet(tuple(RewardSpec(r.name, r.weight) for r in dom.rewards), gate_on_format=dom.gate_on_format)
        for name, dom in cfg.data.domains.items()
    }


def open_store(cfg: ExperimentConfig, workdir: Path):
    """The configured artifact store, or ``<workdir>/artifacts`` on local disk."""
    from modomodo.store import ArtifactStore

    return ArtifactStore.from_uri(cfg.store or str((workdir / "artifacts").resolve()))


def stage_metrics(cfg: ExperimentConfig, run_id: str, stage: str) -> StageMetrics:
    return StageMetrics(run=run_id, stage=stage, mixture=mixture_label(cfg.resolved_mixture()))


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
            specs[name] = SourceSpec("path", path=dom.source)
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
    """Training splits of the training domains and test splits of the benchmarks, checksums verified."""
    from modomodo.data.curate import CurationReport, read_curated
    from modomodo.data.synthetic import BENCHMARKS

    report = CurationReport.load(data_dir)
    train = {d: read_curated(data_dir, d, "train") for d in sorted(report.rows) if report.rows[d].get("train")}
    names = benchmarks or [b for b in sorted(report.rows) if b in BENCHMARKS and report.rows[b].get("test")]
    return CuratedData(
        train=train,
        benchmarks={b: read_curated(data_dir, b, "test") for b in names},
        splits={b: BENCHMARKS[b].split for b in names},
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
    from modomodo.policy.load import load_policy, save_policy
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
    model, processor = load_policy(source, "fp32")
    if not cfg.sft.enabled:
        save_policy(model, processor, out_dir / "model", source=source)
        return out_dir / "model"
    bar = _progress(console, "SFT warm-start", cfg.sft.steps)
    result = warm_start(
        model, processor, data.train, cfg.sft, out_dir / "model", source=source,
        on_step=(lambda step, loss: bar.update(step, f"loss {loss:.3f}")) if bar else None,
    )
    if bar:
        bar.close()
    (out_dir / "model" / "warmstart.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    return out_dir / "model"


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
):
    """GRPO on the configured mixture; checkpoints go to the store so a restarted pod resumes."""
    from modomodo.rl.callbacks import MetricsCallback, ProgressCallback
    from modomodo.rl.grpo import schedule_dataset, train_grpo

    data = load_curated(data_dir)
    out_dir = Path(out_dir)
    store = store if store is not None else open_store(cfg, out_dir.parent)
    metrics = stage_metrics(cfg, run_id, "train")
    metrics.record_mixture(cfg.resolved_mixture())
    _, draws, _ = schedule_dataset(data.train, cfg)
    callbacks = [MetricsCallback(metrics, draws, cfg.train.prompts_per_step)]
    if console is not None:
        callbacks.append(ProgressCallback(console))
    with metrics.stage_timer():
        result = train_grpo(
            cfg, data.train, Path(base_model), out_dir, run_id=run_id, reward_sets=reward_sets(cfg),
            store=store, resume=resume, callbacks=callbacks,
        )
    (out_dir / "versions.json").write_text(json.dumps(versions(), indent=2, sort_keys=True) + "\n")
    return result


# 4. evaluate -----------------------------------------------------------------------------------


def evaluate_stage(cfg: ExperimentConfig, data_dir: Path, model_dir: Path, out_dir: Path, *, run_id: str = "", console=None):
    """Greedy evaluation of ``model_dir`` on every curated benchmark."""
    from modomodo.evaluation.evaluate import evaluate_policy
    from modomodo.policy.load import load_policy

    data = load_curated(data_dir)
    model, processor = load_policy(model_dir, cfg.policy.dtype)
    metrics = stage_metrics(cfg, run_id or Path(out_dir).name, "evaluate")
    with metrics.stage_timer():
        result = evaluate_policy(
            model, processor, data.benchmarks, data.splits, cfg.eval, Path(out_dir),
            on_benchmark=(lambda name, score: console.print(f"  {name}: {score:.3f}")) if console else None,
        )
        metrics.record_eval(
            {s.benchmark: s.score for s in result.scores if s.split == "in"},
            {s.benchmark: s.score for s in result.scores if s.split == "out"},
            result.in_score,
            result.out_score,
        )
    return result


# The whole loop, in one process ----------------------------------------------------------------


def run_local(cfg: ExperimentConfig, output: Path, console=None) -> dict:
    """curate -> base policy -> GRPO on the configured (default uniform) mixture -> evaluate base
    and trained policy. Returns the evaluation results by policy name."""
    output = Path(output)
    data_dir, base_dir, run_dir = output / "data", output / "base", output / "rl"
    for folder in (data_dir, base_dir, run_dir):
        shutil.rmtree(folder, ignore_errors=True)
    curate_stage(cfg, data_dir)
    base = base_policy_stage(cfg, data_dir, base_dir, console=console)
    base_eval = evaluate_stage(cfg, data_dir, base, output / "eval-base", run_id="base", console=console)
    result = rl_stage(cfg, data_dir, base, run_dir, run_id="uniform", console=console)
    rl_eval = evaluate_stage(cfg, data_dir, Path(result.model_dir), output / "eval-rl", run_id="uniform", console=console)
    summary = {"base": base_eval, "grpo-uniform": rl_eval}
    (output / "summary.json").write_text(
        json.dumps({k: asdict(v) for k, v in summary.items()}, indent=2, sort_keys=True) + "\n"
    )
    return summary


class _Bar:
    def __init__(self, console, label: str, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(), console=console,
        )
        self.task = self.progress.add_task(label, total=total, info="")
        self.progress.start()

    def update(self, completed: int, info: str) -> None:
        self.progress.update(self.task, completed=completed, info=info)

    def close(self) -> None:
        self.progress.stop()


def _progress(console, label: str, total: int) -> _Bar | None:
    return _Bar(console, label, total) if console is not None else None


def generate_synthetic(cfg: ExperimentConfig, out_dir: Path, progress=None) -> list[Path]:
    """Raw synthetic shards (``<out>/<name>/<split>.parquet``), uncurated: what a data source looks like."""
    from modomodo.data.shards import write_shard
    from modomodo.data.synthetic import generate

    written = []
    for name, spec in source_specs(cfg).items():
        if spec.kind != "synthetic":
            continue
        for split, n in (("train", spec.n_train), ("test", spec.n_test)):
            if n:
                path = Path(out_dir) / name / f"{split}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_shard(generate(name, split, n, cfg.data.seed), path)
                written.append(path)
    return written
