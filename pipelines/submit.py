"""Submit a compiled pipeline to a Kubeflow Pipelines server with ``kfp.Client``, follow a run
to its end, and keep a recurring run (scheduled retraining) in step with a package."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from modomodo.retry import RetryPolicy

SUCCEEDED = "SUCCEEDED"
FINAL_STATES = frozenset({SUCCEEDED, "FAILED", "CANCELED", "SKIPPED", "ERROR"})
"""Run states after which a run does not change (``ERROR`` is the v1 API's failure, which some
servers still report)."""
TIMEOUT = "TIMEOUT"
"""The outcome of a run still going when ``follow`` gave up waiting."""


@dataclass(frozen=True)
class Submission:
    pipeline_id: str
    version_id: str
    version_name: str
    version_created: bool
    run_id: str
    url: str
    """The run's page in the Kubeflow Pipelines UI."""


def package_name(package_path: Path) -> str:
    """The pipeline name inside an IR YAML package (``pipelineInfo.name``)."""
    try:
        spec = next(yaml.safe_load_all(Path(package_path).read_text()))
        return spec["pipelineInfo"]["name"]
    except (OSError, StopIteration, KeyError, TypeError, yaml.YAMLError) as err:
        raise ValueError(
            f"{package_path}: not a compiled pipeline (IR YAML with pipelineInfo.name): {err}"
        ) from err


def version_name_for(package_path: Path) -> str:
    """A version name derived from the package's content: resubmitting the same package reuses
    its version, a changed package becomes a new one."""
    name = package_name(package_path)
    return f"{name}-{hashlib.sha256(Path(package_path).read_bytes()).hexdigest()[:12]}"


def connect(host: str, *, namespace: str | None = None, token: str | None = None, ca_cert: str | None = None):
    """A ``kfp.Client`` for ``host``; ``token`` is sent as ``Authorization: Bearer`` (an OIDC or
    service-account token for an authenticated endpoint), ``ca_cert`` is a PEM file that verifies
    the endpoint's TLS certificate (a private CA)."""
    import kfp
    import kfp_server_api

    if ca_cert and not Path(ca_cert).is_file():
        raise FileNotFoundError(f"CA certificate {ca_cert} does not exist")
    # One health check first: kfp.Client retries a refused one five times, 5 s apart, and then
    # reports only a timeout; this one fails at once with the server's answer (401, TLS, ...).
    config = kfp_server_api.Configuration(host=host.rstrip("/"))
    config.ssl_ca_cert = ca_cert or None
    config.retries = 1
    if token:
        config.api_key["authorization"], config.api_key_prefix["authorization"] = token, "Bearer"
    kfp_server_api.HealthzServiceApi(kfp_server_api.ApiClient(config)).healthz_service_get_healthz()
    return kfp.Client(
        host=host, namespace=namespace, existing_token=token or None, ssl_ca_cert=ca_cert or None
    )


def submit(
    package_path: Path,
    *,
    host: str,
    arguments: dict,
    experiment: str,
    run_name: str,
    namespace: str | None = None,
    service_account: str | None = None,
    client=None,
) -> Submission:
    """Create (or reuse) the pipeline and its content-named version, then start a run in
    ``experiment`` (created when missing), its pods running as ``service_account`` (the chart's,
    whose Role the steps need; None: the server's default). ``client`` defaults to ``connect(host)``."""
    client = client or connect(host, namespace=namespace)
    pipeline_id, version_id, version_name, created = upload(client, Path(package_path))
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    run = client.run_pipeline(
        experiment_id=experiment_id,
        job_name=run_name,
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=version_id,
        service_account=service_account,
    )
    url = f"{host.rstrip('/')}/#/runs/details/{run.run_id}"
    return Submission(pipeline_id, version_id, version_name, created, run.run_id, url)


def upload(client, package_path: Path) -> tuple[str, str, str, bool]:
    """The pipeline of the package (created when missing) and its content-named version (uploaded
    when missing): ``(pipeline_id, version_id, version_name, created)``. Uploading the same
    package again changes nothing."""
    name = package_name(package_path)
    version_name = version_name_for(package_path)
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(package_path), pipeline_name=name).pipeline_id
    version_id, created = _find_version(client, pipeline_id, version_name), False
    if version_id is None:
        version_id = client.upload_pipeline_version(
            str(package_path), pipeline_version_name=version_name, pipeline_id=pipeline_id
        ).pipeline_version_id
        created = True
    return pipeline_id, version_id, version_name, created


def _find_version(client, pipeline_id: str, version_name: str) -> str | None:
    predicate = {"operation": "EQUALS", "key": "display_name", "stringValue": version_name}
    found = client.list_pipeline_versions(pipeline_id, filter=json.dumps({"predicates": [predicate]}))
    versions = found.pipeline_versions or []
    return versions[0].pipeline_version_id if versions else None


@dataclass(frozen=True)
class Outcome:
    """How a followed run ended."""

    state: str
    """The run's final state (``SUCCEEDED``, ``FAILED``, ``CANCELED``...) or ``TIMEOUT``."""
    error: str
    """The run's error message; empty when it has none."""
    seconds: float
    """How long it was followed."""

    @property
    def succeeded(self) -> bool:
        return self.state == SUCCEEDED


def follow(
    client,
    run_id: str,
    *,
    timeout: float,
    poll: float = 30.0,
    on_change: Callable[[str], None] = lambda state: None,
    reconnect: Callable[[], object] | None = None,
    retry: RetryPolicy = RetryPolicy(attempts=5, base_delay=2.0, max_delay=30.0),
) -> Outcome:
    """Poll run ``run_id`` every ``poll`` seconds until it ends or ``timeout`` seconds pass,
    calling ``on_change`` with each new state. A poll that fails transiently (the API server
    restarting, a 5xx from its proxy) is retried; a run left waiting is not cancelled. When the
    server stops accepting the token (a projected service-account token expires within the hour,
    while a training run takes many), ``reconnect`` gives a client with a fresh one."""
    import kfp_server_api

    start, state, renewed = time.monotonic(), None, False
    while True:
        try:
            run = retry.call(
                lambda client=client: client.get_run(run_id),
                is_transient=_is_transient_api_error,
                what=f"get run {run_id}",
            )
        except kfp_server_api.ApiException as exc:
            if exc.status != 401 or reconnect is None or renewed:
                raise
            client, renewed = reconnect(), True
            continue
        renewed = False
        if run.state != state:
            state = run.state
            on_change(state or "RUNTIME_STATE_UNSPECIFIED")
        elapsed = time.monotonic() - start
        if state in FINAL_STATES:
            return Outcome(state, _error_message(run), elapsed)
        if elapsed + poll > timeout:
            return Outcome(
                TIMEOUT, f"run {run_id} still {state} after {elapsed:.0f} s (timeout {timeout:g} s)", elapsed
            )
        time.sleep(poll)


def _error_message(run) -> str:
    error = getattr(run, "error", None)
    return (getattr(error, "message", None) or "") if error is not None else ""


def _is_transient_api_error(exc: BaseException) -> bool:
    import kfp_server_api
    import urllib3

    if isinstance(exc, kfp_server_api.ApiException):
        return exc.status is None or exc.status in (429,) or exc.status >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError)


@dataclass(frozen=True)
class Schedule:
    """A recurring run as ``schedule`` left it."""

    recurring_run_id: str
    version_name: str
    action: str
    """``created`` (none had the name), ``replaced`` (one with other settings was replaced) or
    ``unchanged`` (one with the same settings exists)."""


def check_cron(cron: str) -> str:
    """KFP's scheduler reads cron with a seconds field first (6 fields, robfig/cron): a 5-field
    crontab line would be read shifted (``0 3 * * *`` as every hour at minute 3), so it is
    refused rather than guessed."""
    fields = cron.split()
    if cron.startswith("@") or len(fields) == 6:
        return " ".join(fields)
    raise ValueError(
        f"cron {cron!r}: KFP wants 6 fields, seconds first (e.g. '0 0 3 * * *' for 03:00 daily), "
        "or a descriptor such as '@daily'"
    )


def schedule(
    package_path: Path,
    *,
    host: str,
    name: str,
    cron: str,
    arguments: dict,
    experiment: str,
    namespace: str | None = None,
    client=None,
) -> Schedule:
    """Keep exactly one recurring run called ``name`` in ``experiment``: it runs the package's
    content-named version on ``cron`` with ``arguments``, one run at a time, without catching up
    on missed slots. Repeating the call with the same settings changes nothing; other settings
    create the new recurring run first and then delete the old one (KFP cannot update one), so a
    failure never leaves the experiment without its schedule."""
    cron = check_cron(cron)
    client = client or connect(host, namespace=namespace)
    pipeline_id, version_id, version_name, _ = upload(client, Path(package_path))
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    predicate = {"operation": "EQUALS", "key": "display_name", "stringValue": name}
    existing = (
        client.list_recurring_runs(
            experiment_id=experiment_id, page_size=100, filter=json.dumps({"predicates": [predicate]})
        ).recurring_runs
        or []
    )
    wanted = (version_id, cron, "1", _canonical(arguments), True)
    same = [r for r in existing if _settings(r) == wanted]
    if len(existing) == 1 and same:
        return Schedule(same[0].recurring_run_id, version_name, "unchanged")
    created = client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=name,
        cron_expression=cron,
        max_concurrency=1,
        no_catchup=True,
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=version_id,
    )
    for old in existing:
        client.delete_recurring_run(old.recurring_run_id)
    return Schedule(created.recurring_run_id, version_name, "replaced" if existing else "created")


def _settings(recurring_run) -> tuple:
    """What ``schedule`` sets on a recurring run, comparable with its wanted settings."""
    reference = recurring_run.pipeline_version_reference
    cron = recurring_run.trigger.cron_schedule if recurring_run.trigger else None
    parameters = recurring_run.runtime_config.parameters if recurring_run.runtime_config else None
    return (
        reference.pipeline_version_id if reference else None,
        cron.cron if cron else None,
        str(recurring_run.max_concurrency),
        _canonical(parameters or {}),
        recurring_run.mode == "ENABLE" or recurring_run.status == "ENABLED",
    )


def _canonical(parameters: dict) -> str:
    """Parameters as comparable text: the server returns numbers as doubles (``1`` as ``1.0``)."""
    from modomodo.components.runtime import integral_floats_to_int

    return json.dumps(integral_floats_to_int(parameters), sort_keys=True)
