"""The pipeline commands of ``modomodo``: ``run`` (locally, with kfp's local runner), ``compile``
(IR YAML for a cluster) and ``submit`` (to a Kubeflow Pipelines server).

Each resolves ``--preset``/``--set`` into a validated config before any work starts; the pipeline
modules (and kfp) are imported only when a command runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modomodo.cli_common import Overrides, Preset, console, resolve_config

PipelineName = Annotated[str, typer.Option("--pipeline", help="mixture-search or train.")]
Pushgateway = Annotated[
    str,
    typer.Option(
        help="Pushgateway URL for every step's metrics (default: config, then $MODOMODO_PUSHGATEWAY)."
    ),
]


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
) -> None:
    """The main job: run a pipeline (default mixture-search) locally with kfp's local runner; the
    report lands in OUTPUT as report.html and report.json."""
    from modomodo.pipelines.local import run_locally

    cfg = resolve_config(preset, overrides)
    output = output.resolve()
    store_uri = store or cfg.store or str(output / "artifacts")
    arguments = {"profile_prompts": profile_prompts} if pipeline == "mixture-search" else {}
    try:
        result = run_locally(
            pipeline,
            cfg,
            output,
            store_uri=store_uri,
            pushgateway=_pushgateway(pushgateway, cfg),
            cache=cache,
            arguments=arguments,
        )
    except RuntimeError as err:  # kfp's local runner names the failed task
        console.print(f"[red]pipeline failed:[/red] {err}")
        raise typer.Exit(1) from None
    console.print(summary_table(result.summary(), cfg.search.target))
    console.print(f"report: {result.html}\njson:   {result.json}\nartifacts: {store_uri}")


def compile(  # noqa: A001 - the command is called compile
    output: Annotated[Path, typer.Option(help="Folder for <pipeline>.yaml files.")],
    preset: Preset = "smoke",
    overrides: Overrides = None,
    pipeline: Annotated[
        list[str] | None, typer.Option("--pipeline", help="Pipelines to compile (default: all).")
    ] = None,
    image: Annotated[
        str, typer.Option(help="Runtime image of every step (default: $MODOMODO_IMAGE or the release tag).")
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
) -> None:
    """Compile pipelines to Kubeflow IR YAML, with the resolved config as the default argument."""
    cfg = resolve_config(preset, overrides)
    _use_image(image)
    cluster = _cluster(gpus, gpu_cpu, gpu_memory, cpu_memory, accelerator, metrics_port)
    for path in _compile(cfg, output, pipeline, cluster):
        console.print(f"compiled {path}")


def submit(
    host: Annotated[
        str, typer.Option(help="Kubeflow Pipelines endpoint, e.g. http://ml-pipeline-ui.kubeflow:80.")
    ],
    store_uri: Annotated[
        str, typer.Option(help="Artifact store the steps use, e.g. s3://modomodo/experiments.")
    ],
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            "-p",
            help="Preset name or YAML file (default smoke). With --package: the run's config, "
            "replacing the one compiled into the package.",
        ),
    ] = None,
    overrides: Overrides = None,
    pipeline: PipelineName = "mixture-search",
    package: Annotated[
        Path | None,
        typer.Option(
            help="A compiled package to submit (default: compile --pipeline now); it runs its compiled "
            "config unless --preset or --set is given."
        ),
    ] = None,
    image: Annotated[str, typer.Option(help="Runtime image when compiling (see `compile`).")] = "",
    experiment: Annotated[str, typer.Option(help="KFP experiment (created when missing).")] = "modomodo",
    run_name: Annotated[str, typer.Option(help="Run name (default: <config name>-<pipeline>).")] = "",
    gpus: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="GPUs a GPU step requests when compiling (default 1; 0: CPU nodes); a package has "
            "its count compiled in.",
        ),
    ] = None,
    s3_secret: Annotated[
        str, typer.Option(help="Kubernetes Secret with the S3 credentials.")
    ] = "modomodo-s3",
    pushgateway: Pushgateway = "",
    namespace: Annotated[str, typer.Option(help="Namespace of a multi-user deployment.")] = "",
) -> None:
    """Submit a pipeline to a Kubeflow Pipelines server: create or reuse the pipeline version
    named after the package's content, start a run, print its link."""
    import tempfile

    # A package runs the config compiled into it, unless the command names one: then that config
    # is the run's `config` parameter (validated here, before anything is submitted).
    config_given = package is None or preset is not None or bool(overrides)
    if package is not None and gpus is not None:
        console.print("[red]--gpus is compiled into a package[/red]: `modomodo compile --gpus N` it again")
        raise typer.Exit(2)
    cfg = resolve_config(preset or "smoke", overrides) if config_given else None
    _use_image(image)
    from modomodo.pipelines.settings import ClusterSettings
    from modomodo.pipelines.submit import package_name
    from modomodo.pipelines.submit import submit as submit_package

    arguments = {
        "store_uri": store_uri,
        "s3_secret": s3_secret,
        "pushgateway": _pushgateway(pushgateway, cfg),
    }
    if cfg is not None:
        arguments["config"] = cfg.to_dict()
    with tempfile.TemporaryDirectory() as scratch:
        if package is None:
            cluster = ClusterSettings(gpus=1 if gpus is None else gpus)
            (package,) = _compile(cfg, Path(scratch), [pipeline], cluster)
        else:
            pipeline = package_name(package)
        result = submit_package(
            package,
            host=host,
            arguments=arguments,
            experiment=experiment,
            run_name=run_name or (f"{cfg.name}-{pipeline}" if cfg else pipeline),
            namespace=namespace or None,
        )
    reused = "new" if result.version_created else "reused"
    console.print(f"pipeline version {result.version_name} ({reused})")
    typer.echo(result.url)


def _cluster(gpus: int, gpu_cpu: str, gpu_memory: str, cpu_memory: str, accelerator: str, metrics_port: int):
    from modomodo.pipelines.settings import ClusterSettings, Resources

    defaults = ClusterSettings()
    return ClusterSettings(
        gpus=gpus,
        accelerator=accelerator,
        gpu_resources=Resources(cpu=gpu_cpu, memory=gpu_memory),
        cpu_resources=Resources(cpu=defaults.cpu_resources.cpu, memory=cpu_memory),
        metrics_port=metrics_port,
    )


def _use_image(image: str) -> None:
    """Compile against ``image``: the components read it when first imported, so this runs before
    anything imports ``modomodo.pipelines``."""
    if image:
        os.environ["MODOMODO_IMAGE"] = image


def _compile(cfg, output: Path, names: list[str] | None, cluster) -> list[Path]:
    from modomodo.pipelines import PIPELINES, compile_pipeline

    unknown = sorted(set(names or []) - set(PIPELINES))
    if unknown:
        console.print(f"[red]unknown pipelines {unknown}[/red]; pipelines: {sorted(PIPELINES)}")
        raise typer.Exit(2)
    return [
        compile_pipeline(name, cfg, Path(output) / f"{name}.yaml", cluster) for name in names or PIPELINES
    ]


def summary_table(summary: dict, target: str) -> Table:
    """The report's headline as a table: the final (chosen or trained) mixture against uniform
    and base."""
    chosen = summary["chosen"]
    table = Table(title=f"{chosen['label']} mixture: {_label(chosen['mixture'])}")
    for column in ("", "mixture", "In-Score", "Out-Score", f"{chosen['label']} {target} - this"):
        table.add_column(column, justify="right")
    for row in ("chosen", "uniform", "base"):
        if row in summary:
            entry = summary[row]
            delta = f"{entry['delta']:+.3f}" if "delta" in entry else ""
            table.add_row(
                chosen["label"] if row == "chosen" else row,
                _label(entry["mixture"]),
                _score(entry["scores"], "in_score"),
                _score(entry["scores"], "out_score"),
                delta,
            )
    return table


def _score(scores: dict, column: str) -> str:
    return f"{scores[column]:.3f}" if scores.get(column) is not None else "-"


def _label(mixture: dict | None) -> str:
    return ", ".join(f"{d}={w:.2f}" for d, w in sorted((mixture or {}).items()) if w > 0) or "-"


def register(app: typer.Typer) -> None:
    """Add ``run``, ``compile`` and ``submit`` to the ``modomodo`` app."""
    app.command("run")(run)
    app.command("compile")(compile)
    app.command("submit")(submit)
