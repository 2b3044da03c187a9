"""The pipeline commands of ``modomodo``: ``run`` (locally, with kfp's local runner), ``compile``
(IR YAML for a cluster), ``submit`` (to a Kubeflow Pipelines server, optionally following the run
to its end) and ``schedule`` (a recurring run for scheduled retraining).

Each resolves ``--preset``/``--set`` into a validated config before any work starts; the pipeline
modules (and kfp) are imported only when a command runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from modomodo.cli.common import Overrides, Preset, console, resolve_config

PipelineName = Annotated[str, typer.Option("--pipeline", help="mixture-search or train.")]
Pushgateway = Annotated[
    str,
    typer.Option(
        help="Pushgateway URL for every step's metrics (default: config, then $MODOMODO_PUSHGATEWAY)."
    ),
]


GpusWhenCompiling = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="GPUs a GPU step requests when compiling (default 1; 0: CPU nodes); a package has its "
        "count compiled in.",
    ),
]
ImageWhenCompiling = Annotated[str, typer.Option(help="CPU image when compiling (see `compile`).")]
GpuImageWhenCompiling = Annotated[str, typer.Option(help="GPU image when compiling (see `compile`).")]


def _pushgateway(option: str, cfg) -> str:
    from modomodo.metrics import PUSHGATEWAY_ENV

    return option or (cfg.pushgateway if cfg else "") or os.environ.get(PUSHGATEWAY_ENV, "")


def run(
    output: Annotated[
        Path, typer.Option(help="Folder for the report, the artifact store and the pipeline's artifacts.")
    ] = Path("outputs/run"),
    preset: Preset = "smoke",
    overrides: Overrides = None,
    pipeline: PipelineName = "mixture-search",
    store: Annotated[
        str, typer.Option(help="Artifact store URI (default: config, then <output>/artifacts).")
    ] = "",
    pushgateway: Pushgateway = "",
    profile_prompts: Annotated[
        int,
        typer.Option(
            help="mixture-search: prompts a domain in the base policy's pass-rate profile (0: all)."
        ),
    ] = 32,
    cache: Annotated[
        bool, typer.Option("--cache", help="Reuse steps of earlier local runs with the same inputs.")
    ] = False,
    retries: Annotated[
        bool,
        typer.Option("--retries", help="Retry failed steps as on a cluster (rehearses lost pods)."),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Also print the runner's full log (every step's output) on the terminal."
        ),
    ] = False,
) -> None:
    """The main job: run a pipeline (default mixture-search) locally with kfp's local runner; the
    report lands in OUTPUT as report.html and report.json. The terminal shows one line per task;
    the runner's full log goes to OUTPUT/run.log."""
    from modomodo.pipelines.local import run_locally
    from modomodo.pipelines.local_console import RUN_LOG, quiet_runner

    cfg = resolve_config(preset, overrides)
    output = output.resolve()
    store_uri = store or cfg.store or str(output / "artifacts")
    arguments = {"profile_prompts": profile_prompts} if pipeline == "mixture-search" else {}
    log = output / RUN_LOG
    console.print(f"{pipeline} on {cfg.name}: one line per task; the runner's log: {log}", soft_wrap=True)
    with _pipeline_config_errors():  # outside the try: its typer.Exit is a RuntimeError too
        try:
            with quiet_runner(console, log, verbose=verbose):
                result = run_locally(
                    pipeline,
                    cfg,
                    output,
                    store_uri=store_uri,
                    pushgateway=_pushgateway(pushgateway, cfg),
                    cache=cache,
                    arguments=arguments,
                    retries=retries,
                )
        except RuntimeError:  # a task failed; quiet_runner showed which, its last lines and the log
            raise typer.Exit(1) from None
    _print_result(result, cfg.search.target, store_uri)


def _print_result(result, target: str, store_uri: str) -> None:
    """The main job's ending: the result table, the verdict lines and where everything is."""
    summary = result.summary()
    console.print(summary_table(summary, target))
    for line in verdict_lines(summary):
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"report: {result.html}\njson:   {result.json}\nartifacts: {store_uri}", soft_wrap=True)


def compile(  # noqa: A001 - the command is called compile
    output: Annotated[Path, typer.Option(help="Folder for <pipeline>.yaml files.")],
    preset: Preset = "smoke",
    overrides: Overrides = None,
    pipeline: Annotated[
        list[str] | None, typer.Option("--pipeline", help="Pipelines to compile (default: all).")
    ] = None,
    image: Annotated[
        str, typer.Option(help="CPU image of the light steps (default: $MODOMODO_IMAGE or the release tag).")
    ] = "",
    gpu_image: Annotated[
        str, typer.Option(help="Image of the GPU steps (default: $MODOMODO_GPU_IMAGE or the release tag).")
    ] = "",
    gpus: Annotated[
        int, typer.Option(min=0, help="GPUs a GPU step requests; 0: those steps run on CPU nodes.")
    ] = 1,
    gpu_cpu: Annotated[str, typer.Option(help="CPU request of a GPU step.")] = "8",
    gpu_memory: Annotated[str, typer.Option(help="Memory of a GPU step.")] = "64Gi",
    cpu_memory: Annotated[str, typer.Option(help="Memory of a CPU step.")] = "8Gi",
    accelerator: Annotated[str, typer.Option(help="Extended resource of a GPU.")] = "nvidia.com/gpu",
    metrics_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port the RL update serves /metrics on (0: off).")
    ] = 9400,
    study_pvc: Annotated[
        str,
        typer.Option(help="PVC mounted into the search step for a SQLite study file (the chart's default)."),
    ] = "",
) -> None:
    """Compile pipelines to Kubeflow IR YAML, with the resolved config as the default argument."""
    cfg = resolve_config(preset, overrides)
    _use_images(image, gpu_image)
    cluster = _cluster(gpus, gpu_cpu, gpu_memory, cpu_memory, accelerator, metrics_port, study_pvc)
    for path in _compile(cfg, output, pipeline, cluster):
        console.print(f"compiled {path}")


def _cluster(
    gpus: int,
    gpu_cpu: str,
    gpu_memory: str,
    cpu_memory: str,
    accelerator: str,
    metrics_port: int,
    study_pvc: str,
):
    from modomodo.pipelines.settings import ClusterSettings, Resources

    defaults = ClusterSettings()
    return ClusterSettings(
        gpus=gpus,
        accelerator=accelerator,
        gpu_resources=Resources(cpu=gpu_cpu, memory=gpu_memory),
        cpu_resources=Resources(cpu=defaults.cpu_resources.cpu, memory=cpu_memory),
        metrics_port=metrics_port,
        study_volume=study_pvc,
    )


def _use_images(image: str, gpu_image: str) -> None:
    """Compile against these images (empty: the default): the components read them when first
    imported, so this runs before anything imports ``modomodo.pipelines``."""
    if image:
        os.environ["MODOMODO_IMAGE"] = image
    if gpu_image:
        os.environ["MODOMODO_GPU_IMAGE"] = gpu_image


def _compile(cfg, output: Path, names: list[str] | None, cluster) -> list[Path]:
    from modomodo.pipelines import PIPELINES, compile_pipeline

    unknown = sorted(set(names or []) - set(PIPELINES))
    if unknown:
        console.print(f"[red]unknown pipelines {unknown}[/red]; pipelines: {sorted(PIPELINES)}")
        raise typer.Exit(2)
    with _pipeline_config_errors():
        return [
            compile_pipeline(name, cfg, Path(output) / f"{name}.yaml", cluster) for name in names or PIPELINES
        ]


@contextmanager
def _pipeline_config_errors() -> Iterator[None]:
    """What a pipeline needs of the config beyond its load checks (the mixture search: enough
    seed runs for its surrogate), refused like a config error: before anything runs."""
    from modomodo.config import ConfigError

    try:
        yield
    except ConfigError as e:
        console.print(f"[red]config error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None


def summary_table(summary: dict, target: str) -> Table:
    """The report's headline as a table: the final (chosen or trained) mixture against uniform
    and base."""
    chosen = summary["chosen"]
    table = Table(title=f"{chosen['label']} mixture: {_label(chosen['mixture'])}")
    noise = (summary.get("seed_noise") or {}).get("std")
    columns = (
        "",
        "mixture",
        "In-Score",
        "Out-Score",
        f"{target} seed noise",
        f"{chosen['label']} {target} - this",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in ("chosen", "uniform", "base"):
        if row in summary:
            entry = summary[row]
            delta = f"{entry['delta']:+.3f}" if "delta" in entry else ""
            # the base is one fixed model; the other rows are RL runs, each as noisy as its seed
            spread = f"±{noise:.3f}" if noise is not None and entry["mixture"] else "-"
            table.add_row(
                chosen["label"] if row == "chosen" else row,
                _label(entry["mixture"]),
                _score(entry["scores"], "in_score"),
                _score(entry["scores"], "out_score"),
                spread,
                delta,
            )
    return table


def verdict_lines(summary: dict) -> list[str]:
    """The report's judgement in words: how the mixture was picked, and whether its lead over
    uniform is beyond the seed noise."""
    lines = []
    if "decision" in summary:
        lines.append(f"picked by: {summary['decision']['path']} ({summary['decision']['reason']})")
    if "uniform" in summary:
        lines.append(f"verdict: {summary['uniform']['verdict']}")
    return lines


def _score(scores: dict, column: str) -> str:
    return f"{scores[column]:.3f}" if scores.get(column) is not None else "-"


def _label(mixture: dict | None) -> str:
    return ", ".join(f"{d}={w:.2f}" for d, w in sorted((mixture or {}).items()) if w > 0) or "-"


def register(app: typer.Typer) -> None:
    """Add ``run``, ``compile``, ``submit``, ``upload``, ``schedule`` and the retrain gate's
    ``accepted`` and ``gate`` to the ``modomodo`` app."""
    from modomodo.cli.cluster import schedule, submit, upload
    from modomodo.cli.retrain import register as register_retrain

    app.command("run")(run)
    app.command("compile")(compile)
    app.command("submit")(submit)
    app.command("upload")(upload)
    app.command("schedule")(schedule)
    register_retrain(app)
