"""The commands that talk to a Kubeflow Pipelines server: ``submit`` (and follow), ``upload``, ``schedule``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from modomodo.cli.common import Overrides, console, resolve_config
from modomodo.cli.pipelines import (
    GpuImageWhenCompiling,
    GpusWhenCompiling,
    ImageWhenCompiling,
    PipelineName,
    Pushgateway,
    _compile,
    _pushgateway,
    _use_images,
)

if TYPE_CHECKING:
    from modomodo.config import ExperimentConfig

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


Experiment = Annotated[str, typer.Option(help="KFP experiment (created when missing).")]


S3Secret = Annotated[str, typer.Option(help="Kubernetes Secret with the S3 credentials.")]


Host = Annotated[
    str, typer.Option(help="Kubeflow Pipelines endpoint, e.g. http://ml-pipeline-ui.kubeflow:80.")
]
StoreUri = Annotated[str, typer.Option(help="Artifact store the steps use, e.g. s3://modomodo/experiments.")]
SubmitPreset = Annotated[
    str | None,
    typer.Option(
        "--preset",
        "-p",
        help="Preset name or YAML file (default smoke). With --package: the run's config, "
        "replacing the one compiled into the package.",
    ),
]
Package = Annotated[
    Path | None,
    typer.Option(
        help="A compiled package to submit (default: compile --pipeline now); it runs its compiled "
        "config unless --preset or --set is given."
    ),
]
RunName = Annotated[str, typer.Option(help="Run name (default: <config name>-<pipeline>).")]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Follow the run until it ends; exit 0 when it succeeded, 1 failed, 3 canceled, "
        "4 still running at --timeout, 5 endpoint unreachable or refusing.",
    ),
]
Timeout = Annotated[
    float, typer.Option(min=0, help="--wait: seconds to wait before giving up (the run goes on).")
]
Poll = Annotated[float, typer.Option(min=0.01, help="--wait: seconds between status checks.")]
ServiceAccount = Annotated[
    str,
    typer.Option(
        help="Kubernetes service account the run's pods use (the chart's, which holds the steps' "
        "Role; default: the server's)."
    ),
]

EXIT_FAILED, EXIT_CANCELED, EXIT_TIMEOUT, EXIT_UNREACHABLE = 1, 3, 4, 5
"""Exit codes of ``submit --wait`` (2 is a bad config or option, 0 a succeeded run)."""
WAIT_EXIT_CODES = {"SUCCEEDED": 0, "CANCELED": EXIT_CANCELED, "TIMEOUT": EXIT_TIMEOUT}
"""Final state -> exit code; any other final state (FAILED, ERROR, SKIPPED) is EXIT_FAILED."""


def submit(
    host: Host,
    store_uri: StoreUri,
    preset: SubmitPreset = None,
    overrides: Overrides = None,
    pipeline: PipelineName = "mixture-search",
    package: Package = None,
    image: ImageWhenCompiling = "",
    gpu_image: GpuImageWhenCompiling = "",
    experiment: Experiment = "modomodo",
    run_name: RunName = "",
    gpus: GpusWhenCompiling = None,
    s3_secret: S3Secret = "modomodo-s3",
    pushgateway: Pushgateway = "",
    namespace: Namespace = "",
    wait: Wait = False,
    timeout: Timeout = 86400.0,
    poll: Poll = 30.0,
    token: Token = "",
    token_file: TokenFile = None,
    ca_cert: CaCert = None,
    service_account: ServiceAccount = "",
) -> None:
    """Submit a pipeline to a Kubeflow Pipelines server: create or reuse the pipeline version
    named after the package's content, start a run, print its link; with --wait, follow it."""
    from modomodo.pipelines.submit import submit as submit_package

    prepared = _prepared(
        preset, overrides, pipeline, package, (image, gpu_image), store_uri, gpus, s3_secret, pushgateway
    )
    with prepared as job, _kfp_errors(host):
        client = _client(host, namespace, token, token_file, ca_cert)
        result = submit_package(
            job.package,
            host=host,
            arguments=job.arguments,
            experiment=experiment,
            run_name=run_name or (f"{job.cfg.name}-{job.pipeline}" if job.cfg else job.pipeline),
            namespace=namespace or None,
            service_account=service_account or None,
            client=client,
        )
    reused = "new" if result.version_created else "reused"
    console.print(f"pipeline version {result.version_name} ({reused})")
    typer.echo(result.url)
    if wait:
        reconnect = (lambda: _client(host, namespace, token, token_file, ca_cert)) if token_file else None
        _follow(client, host, result.run_id, timeout, poll, reconnect)


def _follow(client, host: str, run_id: str, timeout: float, poll: float, reconnect) -> None:
    """``submit --wait``: follow the run to its end; exit with :data:`WAIT_EXIT_CODES` unless it
    succeeded. ``reconnect`` (with a token file) reads the token again when it expires."""
    from modomodo.pipelines.submit import follow

    with _kfp_errors(host):
        outcome = follow(
            client,
            run_id,
            timeout=timeout,
            poll=poll,
            on_change=lambda state: console.print(f"run {run_id}: {state}", soft_wrap=True),
            reconnect=reconnect,
        )
    if outcome.succeeded:
        console.print(f"run {run_id} succeeded after {outcome.seconds:.0f} s", soft_wrap=True)
        return
    console.print(
        f"[red]run {run_id} {outcome.state}[/red]: {outcome.error or 'no error message'}", soft_wrap=True
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
    prepared = _prepared(
        preset, overrides, pipeline, package, (image, gpu_image), store_uri, gpus, s3_secret, pushgateway
    )
    with prepared as job, _kfp_errors(host):
        result = schedule_package(
            job.package,
            host=host,
            name=name or (f"{job.cfg.name}-retrain" if job.cfg else f"{job.pipeline}-retrain"),
            cron=cron,
            arguments=job.arguments,
            experiment=experiment,
            namespace=namespace or None,
            client=_client(host, namespace, token, token_file, ca_cert),
        )
    console.print(f"recurring run {result.action}: pipeline version {result.version_name}", soft_wrap=True)
    typer.echo(result.recurring_run_id)


class Prepared(NamedTuple):
    """What ``submit`` and ``schedule`` send."""

    package: Path
    """The package: compiled now, or the one given."""
    pipeline: str
    """The pipeline's name."""
    arguments: dict
    """The run's parameters."""
    cfg: ExperimentConfig | None
    """The config the arguments carry; None: the package's compiled config runs."""


@contextmanager
def _prepared(
    preset, overrides, pipeline, package, images, store_uri, gpus, s3_secret, pushgateway
) -> Iterator[Prepared]:
    """The package to send (compiled now, on ``images`` = (CPU image, GPU image), unless given),
    with its run arguments; the package compiled now lives while inside."""
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
        yield Prepared(package, pipeline, arguments, cfg)


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
