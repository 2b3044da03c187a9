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
from rich.table import Table

from modomodo.cli_common import Overrides, Preset, console, resolve_config

PipelineName = Annotated[str, typer.Option("--pipeline", help="mixture-search or train.")]
Pushgateway = Annotated[
    str,
    typer.Option(
        help="Pushgateway URL for every step's metrics (default: config, then $MODOMODO_PUSHGATEWAY)."
    ),
]


Token = Annotated[
    str,
    typer.Option(
        envvar="KFP_TOKEN",
        help="Bearer token for an authenticated KFP endpoint (prefer the environment variable).",
        show_default=False,
    ),
]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        envvar="KFP_TOKEN_FILE",
        help="File holding the bearer token, e.g. a projected service-account token "
        "(/var/run/secrets/kubernetes.io/serviceaccount/token).",
    ),
]
CaCert = Annotated[
    Path | None,
    typer.Option(envvar="KFP_CA_CERT", help="PEM file of the CA that signed the endpoint's TLS certificate."),
]
Namespace = Annotated[str, typer.Option(help="Namespace of a multi-user deployment.")]
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
Experiment = Annotated[str, typer.Option(help="KFP experiment (created when missing).")]
S3Secret = Annotated[str, typer.Option(help="Kubernetes Secret with the S3 credentials.")]

EXIT_FAILED, EXIT_CANCELED, EXIT_TIMEOUT, EXIT_UNREACHABLE = 1, 3, 4, 5
"""Exit codes of ``submit --wait`` (2 is a bad config or option, 0 a succeeded run)."""
WAIT_EXIT_CODES = {"SUCCEEDED": 0, "CANCELED": EXIT_CANCELED, "TIMEOUT": EXIT_TIMEOUT}
"""Final state -> exit code; any other final state (FAILED, ERROR, SKIPPED) is EXIT_FAILED."""


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
    summary = result.summary()
    console.print(summary_table(summary, cfg.search.target))
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
    image: ImageWhenCompiling = "",
    gpu_image: GpuImageWhenCompiling = "",
    experiment: Experiment = "modomodo",
    run_name: Annotated[str, typer.Option(help="Run name (default: <config name>-<pipeline>).")] = "",
    gpus: GpusWhenCompiling = None,
    s3_secret: S3Secret = "modomodo-s3",
    pushgateway: Pushgateway = "",
    namespace: Namespace = "",
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the run until it ends; exit 0 when it succeeded, 1 failed, 3 canceled, "
            "4 still running at --timeout, 5 endpoint unreachable or refusing.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0, help="--wait: seconds to wait before giving up (the run goes on).")
    ] = 86400.0,
    poll: Annotated[float, typer.Option(min=0.01, help="--wait: seconds between status checks.")] = 30.0,
    token: Token = "",
    token_file: TokenFile = None,
    ca_cert: CaCert = None,
    service_account: Annotated[
        str,
        typer.Option(
            help="Kubernetes service account the run's pods use (the chart's, which holds the steps' "
            "Role; default: the server's)."
        ),
    ] = "",
) -> None:
    """Submit a pipeline to a Kubeflow Pipelines server: create or reuse the pipeline version
    named after the package's content, start a run, print its link; with --wait, follow it."""
    from modomodo.pipelines.submit import follow
    from modomodo.pipelines.submit import submit as submit_package

    images = (image, gpu_image)
    with _prepared(preset, overrides, pipeline, package, images, store_uri, gpus, s3_secret, pushgateway) as (
        package,
        pipeline,
        arguments,
        cfg,
    ):
        with _kfp_errors(host):
            client = _client(host, namespace, token, token_file, ca_cert)
            result = submit_package(
                package,
                host=host,
                arguments=arguments,
                experiment=experiment,
                run_name=run_name or (f"{cfg.name}-{pipeline}" if cfg else pipeline),
                namespace=namespace or None,
                service_account=service_account or None,
                client=client,
            )
    reused = "new" if result.version_created else "reused"
    console.print(f"pipeline version {result.version_name} ({reused})")
    typer.echo(result.url)
    if not wait:
        return
    with _kfp_errors(host):
        outcome = follow(
            client,
            result.run_id,
            timeout=timeout,
            poll=poll,
            on_change=lambda state: console.print(f"run {result.run_id}: {state}", soft_wrap=True),
            # a token file is read again when the token expires during a long run
            reconnect=(lambda: _client(host, namespace, token, token_file, ca_cert)) if token_file else None,
        )
    if outcome.succeeded:
        console.print(f"run {result.run_id} succeeded after {outcome.seconds:.0f} s", soft_wrap=True)
        return
    console.print(
        f"[red]run {result.run_id} {outcome.state}[/red]: {outcome.error or 'no error message'}",
        soft_wrap=True,
    )
    raise typer.Exit(WAIT_EXIT_CODES.get(outcome.state, EXIT_FAILED))


def schedule(
    host: Annotated[str, typer.Option(help="Kubeflow Pipelines endpoint.")],
    store_uri: Annotated[str, typer.Option(help="Artifact store the steps use.")],
    cron: Annotated[
        str,
        typer.Option(
            help="When to run, in KFP's 6-field cron (seconds first), e.g. '0 0 3 * * 1' for "
            "Mondays 03:00 UTC, or a descriptor such as '@weekly'."
        ),
    ],
    name: Annotated[str, typer.Option(help="Recurring run name (default: <config name>-retrain).")] = "",
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help="Preset name or YAML file (see `submit`)."),
    ] = None,
    overrides: Overrides = None,
    pipeline: Annotated[str, typer.Option("--pipeline", help="The pipeline to schedule.")] = "train",
    package: Annotated[Path | None, typer.Option(help="A compiled package (see `submit`).")] = None,
    image: ImageWhenCompiling = "",
    gpu_image: GpuImageWhenCompiling = "",
    experiment: Experiment = "modomodo",
    gpus: GpusWhenCompiling = None,
    s3_secret: S3Secret = "modomodo-s3",
    pushgateway: Pushgateway = "",
    namespace: Namespace = "",
    token: Token = "",
    token_file: TokenFile = None,
    ca_cert: CaCert = None,
) -> None:
    """Keep one recurring run (default: of the `train` pipeline) on a cron schedule, one run at a
    time: created when missing, left alone when its settings are the same, replaced when not."""
    from modomodo.pipelines.submit import check_cron
    from modomodo.pipelines.submit import schedule as schedule_package

    try:
        check_cron(cron)
    except ValueError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from None
    images = (image, gpu_image)
    with _prepared(preset, overrides, pipeline, package, images, store_uri, gpus, s3_secret, pushgateway) as (
        package,
        pipeline,
        arguments,
        cfg,
    ):
        with _kfp_errors(host):
            result = schedule_package(
                package,
                host=host,
                name=name or (f"{cfg.name}-retrain" if cfg else f"{pipeline}-retrain"),
                cron=cron,
                arguments=arguments,
                experiment=experiment,
                namespace=namespace or None,
                client=_client(host, namespace, token, token_file, ca_cert),
            )
    console.print(f"recurring run {result.action}: pipeline version {result.version_name}", soft_wrap=True)
    typer.echo(result.recurring_run_id)


@contextmanager
def _prepared(
    preset, overrides, pipeline, package, images, store_uri, gpus, s3_secret, pushgateway
) -> Iterator[tuple[Path, str, dict, object]]:
    """The package to send (compiled now, on ``images`` = (CPU image, GPU image), unless given),
    the pipeline's name, its run arguments and the config they carry (None: the package's compiled
    config runs)."""
    import tempfile

    # A package runs the config compiled into it, unless the command names one: then that config
    # is the run's `config` parameter (validated here, before anything is submitted).
    config_given = package is None or preset is not None or bool(overrides)
    if package is not None and gpus is not None:
        console.print("[red]--gpus is compiled into a package[/red]: `modomodo compile --gpus N` it again")
        raise typer.Exit(2)
    cfg = resolve_config(preset or "smoke", overrides) if config_given else None
    _use_images(*images)
    from modomodo.pipelines.settings import ClusterSettings
    from modomodo.pipelines.submit import package_name

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
        yield package, pipeline, arguments, cfg


def _client(host: str, namespace: str, token: str, token_file: Path | None, ca_cert: Path | None):
    from modomodo.pipelines.submit import connect

    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as err:
            console.print(f"[red]cannot read the token file:[/red] {err}")
            raise typer.Exit(2) from None
    try:
        return connect(
            host, namespace=namespace or None, token=token, ca_cert=str(ca_cert) if ca_cert else None
        )
    except FileNotFoundError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from None


@contextmanager
def _kfp_errors(host: str) -> Iterator[None]:
    """Turn the KFP client's refusals and connection failures into one clear line and exit code 5."""
    import kfp_server_api
    import urllib3

    try:
        yield
    except kfp_server_api.ApiException as err:
        hint = " (check --token / KFP_TOKEN)" if err.status in (401, 403) else ""
        console.print(
            f"[red]{host} answered {err.status} {err.reason}{hint}[/red]: {(err.body or '')[:300]}",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except urllib3.exceptions.HTTPError as err:
        hint = " (is --ca-cert the CA that signed its certificate?)" if "CERTIFICATE" in str(err) else ""
        console.print(f"[red]cannot reach {host}{hint}[/red]: {err}", soft_wrap=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None


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
    return [
        compile_pipeline(name, cfg, Path(output) / f"{name}.yaml", cluster) for name in names or PIPELINES
    ]


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


def upload(
    host: Annotated[
        str, typer.Option(help="Kubeflow Pipelines endpoint, e.g. http://ml-pipeline-ui.kubeflow:80.")
    ],
    package: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="A compiled pipeline package.")],
    namespace: Namespace = "",
    token: Token = "",
    token_file: TokenFile = None,
    ca_cert: CaCert = None,
) -> None:
    """Upload a compiled package as a pipeline version named after its content, starting no run
    (the chart's upload Job; again with the same package: nothing changes)."""
    from modomodo.pipelines.submit import upload as upload_package

    with _kfp_errors(host):
        client = _client(host, namespace, token, token_file, ca_cert)
        _, _, version_name, created = upload_package(client, package)
    console.print(f"pipeline version {version_name} ({'new' if created else 'reused'})")


def register(app: typer.Typer) -> None:
    """Add ``run``, ``compile``, ``submit``, ``upload``, ``schedule`` and the retrain gate's
    ``accepted`` and ``gate`` to the ``modomodo`` app."""
    from modomodo.cli_retrain import register as register_retrain

    app.command("run")(run)
    app.command("compile")(compile)
    app.command("submit")(submit)
    app.command("upload")(upload)
    app.command("schedule")(schedule)
    register_retrain(app)
