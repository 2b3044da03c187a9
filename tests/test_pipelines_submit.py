"""``modomodo submit`` and ``schedule``: the real ``kfp.Client`` against a small fake of the Kubeflow
Pipelines REST API (v2beta1) on loopback, which records what the client asked for, plays each run
through scripted states, and can require a bearer token and serve TLS."""

from __future__ import annotations

import json
import re
import ssl
import threading
import uuid
from collections.abc import Callable, Sequence
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import typer
import yaml
from typer.testing import CliRunner

from modomodo.cli.pipelines import register
from modomodo.config import load_config
from modomodo.pipelines import compile_pipeline
from modomodo.pipelines.submit import package_name, submit, version_name_for

API = "/apis/v2beta1"


class FakePipelinesServer:
    """Pipelines, versions, experiments and runs in memory, served the way the KFP API server does."""

    def __init__(
        self,
        *,
        states: Sequence[str] = ("SUCCEEDED",),
        error: str = "",
        token: str | None = None,
        tls: tuple[Path, Path] | None = None,
        on_run: Callable[[dict], None] | None = None,
    ) -> None:
        """``states``: what a new run reports to successive GETs (the last one stays); ``error``:
        its error message; ``token``: the bearer token every request must carry (401 otherwise);
        ``tls``: (certificate, key) to serve HTTPS with; ``on_run``: called with each created run,
        standing in for the pipeline's work (a report in the store)."""
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: list[dict] = []
        self.uploads: list[bytes] = []
        self.recurring_runs: dict[str, dict] = {}
        self.states, self.error, self.token, self.on_run = list(states), error, token, on_run
        self.progress: dict[str, list[str]] = {}
        self.refused: list[str] = []
        """Paths of requests refused for a missing or wrong token."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _reply(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _authorized(self) -> bool:
                if server.token is None or self.headers.get("Authorization") == f"Bearer {server.token}":
                    return True
                server.refused.append(self.path)
                self._reply({"error": "Unauthorized", "code": 16, "message": "Unauthorized"}, 401)
                return False

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if url.path.startswith(f"{API}/runs/"):
                    return self._reply(server.run_now(url.path.split("/")[-1]))
                if url.path == f"{API}/recurringruns":
                    found = [
                        r
                        for r in server.recurring_runs.values()
                        if r["experiment_id"] == query.get("experiment_id", [r["experiment_id"]])[0]
                    ]
                    found = server.matching(found, query)
                    return self._reply({"recurringRuns": found, "total_size": len(found)} if found else {})
                if url.path == f"{API}/healthz":
                    return self._reply({"multi_user": False})
                if url.path == f"{API}/pipelines":
                    found = server.matching(server.pipelines.values(), query)
                    return self._reply({"pipelines": found, "total_size": len(found)} if found else {})
                if url.path.startswith(f"{API}/pipelines/") and url.path.endswith("/versions"):
                    pipeline_id = url.path.split("/")[-2]
                    found = server.matching(server.versions.get(pipeline_id, []), query)
                    return self._reply(
                        {"pipeline_versions": found, "total_size": len(found)} if found else {}
                    )
                if url.path == f"{API}/experiments":
                    found = server.matching(server.experiments.values(), query)
                    return self._reply({"experiments": found, "total_size": len(found)} if found else {})
                self._reply({"error": f"no route {url.path}"}, 404)

            def do_DELETE(self) -> None:
                if not self._authorized():
                    return
                url = urlparse(self.path)
                if url.path.startswith(f"{API}/recurringruns/"):
                    del server.recurring_runs[url.path.split("/")[-1]]
                    return self._reply({})
                self._reply({"error": f"no route {url.path}"}, 404)

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                body = self._body()
                if url.path == f"{API}/pipelines/upload":
                    server.uploads.append(server.uploaded_file(self.headers, body))
                    pipeline = {"pipeline_id": str(uuid.uuid4()), "display_name": query["name"]}
                    server.pipelines[pipeline["pipeline_id"]] = pipeline
                    server.add_version(pipeline["pipeline_id"], query["name"])
                    return self._reply(pipeline)
                if url.path == f"{API}/pipelines/upload_version":
                    server.uploads.append(server.uploaded_file(self.headers, body))
                    return self._reply(server.add_version(query["pipelineid"], query["name"]))
                if url.path == f"{API}/experiments":
                    experiment = {**json.loads(body), "experiment_id": str(uuid.uuid4())}
                    server.experiments[experiment["experiment_id"]] = experiment
                    return self._reply(experiment)
                if url.path == f"{API}/runs":
                    run = {**json.loads(body), "run_id": str(uuid.uuid4()), "state": "PENDING"}
                    server.runs.append(run)
                    server.progress[run["run_id"]] = list(server.states)
                    if server.on_run is not None:
                        server.on_run(run)
                    return self._reply(run)
                if url.path == f"{API}/recurringruns":
                    recurring = {**json.loads(body), "recurring_run_id": str(uuid.uuid4())}
                    recurring["status"] = "ENABLED" if recurring.get("mode") == "ENABLE" else "DISABLED"
                    # int64 fields go out as JSON strings (protobuf's JSON mapping), as the server's do
                    recurring["max_concurrency"] = str(recurring.get("max_concurrency", 0))
                    server.recurring_runs[recurring["recurring_run_id"]] = recurring
                    return self._reply(recurring)
                self._reply({"error": f"no route {url.path}"}, 404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def run_now(self, run_id: str) -> dict:
        """The run as a GET sees it: the next scripted state, with the error once it failed."""
        (run,) = [r for r in self.runs if r["run_id"] == run_id]
        progress = self.progress[run_id]
        run["state"] = progress.pop(0) if len(progress) > 1 else progress[0]
        if self.error and run["state"] in ("FAILED", "ERROR", "CANCELED"):
            run["error"] = {"code": 2, "message": self.error}
        return run

    def add_version(self, pipeline_id: str, name: str) -> dict:
        version = {"pipeline_id": pipeline_id, "pipeline_version_id": str(uuid.uuid4()), "display_name": name}
        self.versions.setdefault(pipeline_id, []).append(version)
        return version

    @staticmethod
    def matching(items, query: dict) -> list[dict]:
        """Items whose display_name equals the filter's (the only predicate the client sends)."""
        items = list(items)
        if "filter" not in query:
            return items
        (predicate,) = json.loads(query["filter"][0])["predicates"]
        assert predicate["key"] == "display_name" and predicate["operation"] in ("EQUALS", 1)
        return [item for item in items if item["display_name"] == predicate["stringValue"]]

    @staticmethod
    def uploaded_file(headers, body: bytes) -> bytes:
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body
        )
        (part,) = [
            p
            for p in message.iter_parts()
            if p.get_param("name", header="content-disposition") == "uploadfile"
        ]
        return part.get_payload(decode=True)

    def __enter__(self) -> FakePipelinesServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def kfp_server():
    with FakePipelinesServer() as server:
        yield server


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    return compile_pipeline("train", load_config("smoke"), tmp_path_factory.mktemp("pkg") / "train.yaml")


def test_package_name_and_content_named_version(package, tmp_path):
    assert package_name(package) == "train"
    # The version name is the content's: a byte-identical copy elsewhere gets the same name.
    copy = tmp_path / "elsewhere" / "copy.yaml"
    copy.parent.mkdir()
    copy.write_bytes(package.read_bytes())
    assert version_name_for(copy) == version_name_for(package)
    assert re.fullmatch(r"train-[0-9a-f]{12}", version_name_for(package))
    changed = tmp_path / "changed.yaml"
    changed.write_text(package.read_text().replace("ghcr.io/modomodo", "registry.local/modomodo"))
    assert version_name_for(changed) != version_name_for(package)
    assert version_name_for(changed).startswith("train-")


def test_package_that_is_not_a_pipeline_is_refused(tmp_path):
    bogus = tmp_path / "bogus.yaml"
    bogus.write_text("just: text\n")
    with pytest.raises(ValueError, match="not a compiled pipeline"):
        package_name(bogus)


def test_submit_creates_pipeline_version_experiment_and_run(kfp_server, package):
    arguments = {"store_uri": "s3://modomodo/experiments", "s3_secret": "team-s3"}
    result = submit(
        package, host=kfp_server.url, arguments=arguments, experiment="team-a", run_name="nightly"
    )
    (pipeline,) = kfp_server.pipelines.values()
    assert pipeline["display_name"] == "train" and result.pipeline_id == pipeline["pipeline_id"]
    names = [v["display_name"] for v in kfp_server.versions[result.pipeline_id]]
    assert names == ["train", version_name_for(package)]
    assert result.version_created and result.version_name == version_name_for(package)
    assert kfp_server.uploads == [package.read_bytes()] * 2
    (experiment,) = kfp_server.experiments.values()
    assert experiment["display_name"] == "team-a"
    (run,) = kfp_server.runs
    assert run["display_name"] == "nightly"
    assert run["experiment_id"] == experiment["experiment_id"]
    assert run["pipeline_version_reference"] == {
        "pipeline_id": result.pipeline_id,
        "pipeline_version_id": result.version_id,
    }
    assert run["runtime_config"]["parameters"] == arguments
    assert result.url == f"{kfp_server.url}/#/runs/details/{run['run_id']}"


def test_resubmitting_the_same_package_reuses_its_version_and_experiment(kfp_server, package):
    first = submit(
        package, host=kfp_server.url, arguments={"store_uri": "s3://b/p"}, experiment="e", run_name="one"
    )
    second = submit(
        package, host=kfp_server.url, arguments={"store_uri": "s3://b/p"}, experiment="e", run_name="two"
    )
    assert not second.version_created
    assert (second.pipeline_id, second.version_id) == (first.pipeline_id, first.version_id)
    assert len(kfp_server.uploads) == 2  # the pipeline and its content version, once
    assert len(kfp_server.experiments) == 1
    assert [r["display_name"] for r in kfp_server.runs] == ["one", "two"]
    assert first.run_id != second.run_id


def test_submit_command_compiles_the_resolved_config_and_prints_the_run_link(kfp_server):
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app,
        [
            "submit",
            "--host",
            kfp_server.url,
            "--store-uri",
            "s3://modomodo/x",
            "--pipeline",
            "train",
            "--set",
            "train.steps=9",
            "--gpus",
            "4",
            "--s3-secret",
            "team-s3",
        ],
    )
    assert result.exit_code == 0, result.output
    (run,) = kfp_server.runs
    assert result.stdout.strip().splitlines()[-1] == f"{kfp_server.url}/#/runs/details/{run['run_id']}"
    parameters = run["runtime_config"]["parameters"]
    assert parameters["config"]["train"]["steps"] == 9
    assert (parameters["store_uri"], parameters["s3_secret"]) == ("s3://modomodo/x", "team-s3")
    assert "gpus" not in parameters  # compiled into the package
    spec, _ = yaml.safe_load_all(kfp_server.uploads[-1])
    resources = spec["deploymentSpec"]["executors"]["exec-train-and-evaluate"]["container"]["resources"]
    assert resources["accelerator"]["resourceCount"] == "4"
    assert run["display_name"] == "smoke-train"


def test_submit_command_refuses_gpus_for_a_compiled_package(kfp_server, package):
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app,
        [
            "submit",
            "--host",
            kfp_server.url,
            "--store-uri",
            "s3://b/p",
            "--package",
            str(package),
            "--gpus",
            "2",
        ],
    )
    assert result.exit_code == 2
    assert "--gpus is compiled into a package" in result.output
    assert not kfp_server.runs and not kfp_server.uploads


def test_submit_command_rejects_a_bad_config_without_contacting_the_server(kfp_server):
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app, ["submit", "--host", kfp_server.url, "--store-uri", "s3://b/p", "--set", "train.steps=0"]
    )
    assert result.exit_code == 2
    assert not kfp_server.pipelines and not kfp_server.runs


def test_submit_command_runs_a_package_with_its_compiled_config_unless_one_is_given(kfp_server, package):
    app = typer.Typer()
    register(app)
    base = ["submit", "--host", kfp_server.url, "--store-uri", "s3://b/p", "--package", str(package)]
    as_compiled = CliRunner().invoke(app, base)
    assert as_compiled.exit_code == 0, as_compiled.output
    with_config = CliRunner().invoke(app, [*base, "--preset", "paper", "--set", "train.steps=5"])
    assert with_config.exit_code == 0, with_config.output

    first, second = kfp_server.runs
    assert "config" not in first["runtime_config"]["parameters"]  # the package's own config runs
    assert first["display_name"] == "train"
    config = second["runtime_config"]["parameters"]["config"]
    assert (config["name"], config["train"]["steps"]) == ("paper", 5)
    assert second["display_name"] == "paper-train"


def test_upload_creates_the_version_without_a_run_and_submit_runs_as_the_service_account(kfp_server, package):
    app = typer.Typer()
    register(app)
    first = CliRunner().invoke(app, ["upload", "--host", kfp_server.url, "--package", str(package)])
    assert first.exit_code == 0, first.output
    assert f"{version_name_for(package)} (new)" in first.output and not kfp_server.runs
    uploaded = len(kfp_server.uploads)
    again = CliRunner().invoke(app, ["upload", "--host", kfp_server.url, "--package", str(package)])
    assert f"{version_name_for(package)} (reused)" in again.output and len(kfp_server.uploads) == uploaded
    base = ["submit", "--host", kfp_server.url, "--store-uri", "s3://b/p", "--package", str(package)]
    ran = CliRunner().invoke(app, [*base, "--service-account", "modomodo"])
    assert ran.exit_code == 0, ran.output
    assert kfp_server.runs[0]["service_account"] == "modomodo"


# submit --wait, authenticated endpoints, schedule ------------------------------------------------


def cli(*args: str, env: dict | None = None):
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, list(args), env=env)


def submit_args(server: FakePipelinesServer, package: Path, *extra: str) -> list[str]:
    return ["submit", "--host", server.url, "--store-uri", "s3://b/p", "--package", str(package), *extra]


@pytest.mark.parametrize(
    ("states", "exit_code"),
    [
        (["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"], 0),
        (["RUNNING", "FAILED"], 1),
        (["RUNNING", "CANCELING", "CANCELED"], 3),
        (["RUNNING", "ERROR"], 1),
    ],
)
def test_submit_wait_follows_the_run_and_exits_with_its_outcome(package, states, exit_code):
    with FakePipelinesServer(states=states, error="task rl-update: OOMKilled") as server:
        result = cli(*submit_args(server, package, "--wait", "--poll", "0.01"))
    assert result.exit_code == exit_code, result.output
    (run,) = server.runs
    prefix = f"run {run['run_id']}: "
    changes = [line[len(prefix) :] for line in result.stderr.splitlines() if line.startswith(prefix)]
    distinct = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert changes[: len(distinct)] == distinct  # each state change once, in order
    if exit_code == 0:
        assert f"run {run['run_id']} succeeded" in result.stderr
    else:
        assert f"run {run['run_id']} {states[-1]}" in result.stderr
        assert "task rl-update: OOMKilled" in result.stderr


def test_submit_wait_gives_up_at_the_timeout_with_its_own_exit_code(package):
    with FakePipelinesServer(states=["RUNNING"]) as server:
        result = cli(*submit_args(server, package, "--wait", "--poll", "0.05", "--timeout", "0.3"))
    assert result.exit_code == 4, result.output
    assert "TIMEOUT" in result.stderr and "still RUNNING" in result.stderr
    assert server.runs[0]["state"] == "RUNNING"  # the run itself is left alone


def test_follow_retries_a_poll_that_fails_transiently(kfp_server, package):
    from modomodo.pipelines.submit import connect, follow
    from modomodo.retry import RetryPolicy

    result = submit(package, host=kfp_server.url, arguments={}, experiment="e", run_name="r")
    client = connect(kfp_server.url)
    calls = {"n": 0}
    real_get_run = client.get_run

    def flaky_get_run(run_id):  # the API server answers 503 twice, as behind a restarting proxy
        calls["n"] += 1
        if calls["n"] <= 2:
            import kfp_server_api

            raise kfp_server_api.ApiException(status=503, reason="Service Unavailable")
        return real_get_run(run_id)

    client.get_run = flaky_get_run
    outcome = follow(
        client, result.run_id, timeout=10, poll=0.01, retry=RetryPolicy(attempts=3, base_delay=0.01)
    )
    assert outcome.succeeded and calls["n"] == 3


def test_submit_sends_the_bearer_token_from_the_environment_or_a_token_file(package, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("sa-token-123\n")  # projected tokens end with a newline
    with FakePipelinesServer(token="sa-token-123") as server:
        refused = cli(*submit_args(server, package, "--wait", "--poll", "0.01"))
        from_env = cli(
            *submit_args(server, package, "--wait", "--poll", "0.01"), env={"KFP_TOKEN": "sa-token-123"}
        )
        from_file = cli(
            *submit_args(server, package, "--wait", "--poll", "0.01", "--token-file", str(token_file))
        )
        wrong = cli(*submit_args(server, package), env={"KFP_TOKEN": "stale"})
    assert refused.exit_code == 5 and "401" in refused.stderr and "KFP_TOKEN" in refused.stderr
    assert from_env.exit_code == 0, from_env.output
    assert from_file.exit_code == 0, from_file.output
    assert wrong.exit_code == 5
    assert len(server.runs) == 2  # only the two authorised submissions started runs
    assert "stale" not in wrong.output  # the token is never echoed


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    cert.private_key_pem.write_to_path(str(folder / "server.key"))
    return folder


def test_submit_verifies_a_private_ca_with_ca_cert(package, tls_files):
    with FakePipelinesServer(tls=(tls_files / "server.pem", tls_files / "server.key")) as server:
        assert server.url.startswith("https://")
        unverified = cli(*submit_args(server, package))
        verified = cli(
            *submit_args(server, package, "--wait", "--poll", "0.01", "--ca-cert", str(tls_files / "ca.pem"))
        )
    assert unverified.exit_code == 5 and "--ca-cert" in unverified.stderr
    assert verified.exit_code == 0, verified.output
    assert len(server.runs) == 1


def test_schedule_creates_one_recurring_run_and_is_idempotent_by_name(kfp_server, package):
    args = ["schedule", "--host", kfp_server.url, "--store-uri", "s3://b/p", "--package", str(package)]
    first = cli(*args, "--cron", "0 0 3 * * 1", "--name", "weekly")
    assert first.exit_code == 0, first.output
    (recurring,) = kfp_server.recurring_runs.values()
    assert first.stdout.strip().splitlines()[-1] == recurring["recurring_run_id"]
    assert "created" in first.stderr
    assert recurring["display_name"] == "weekly"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"
    assert recurring["max_concurrency"] == "1" and recurring["no_catchup"] is True
    assert recurring["mode"] == "ENABLE"
    version = kfp_server.versions[recurring["pipeline_version_reference"]["pipeline_id"]][-1]
    assert recurring["pipeline_version_reference"]["pipeline_version_id"] == version["pipeline_version_id"]
    assert recurring["runtime_config"]["parameters"]["store_uri"] == "s3://b/p"

    again = cli(*args, "--cron", "0 0 3 * * 1", "--name", "weekly")
    assert again.exit_code == 0 and "unchanged" in again.stderr
    assert list(kfp_server.recurring_runs) == [recurring["recurring_run_id"]]

    moved = cli(*args, "--cron", "0 0 4 * * 1", "--name", "weekly", "--set", "train.mixture={det: 1.0}")
    assert moved.exit_code == 0 and "replaced" in moved.stderr
    (replacement,) = kfp_server.recurring_runs.values()
    assert replacement["recurring_run_id"] != recurring["recurring_run_id"]
    assert replacement["trigger"]["cron_schedule"]["cron"] == "0 0 4 * * 1"
    assert replacement["runtime_config"]["parameters"]["config"]["train"]["mixture"] == {"det": 1.0}

    other = cli(*args, "--cron", "@daily", "--name", "daily")
    assert other.exit_code == 0
    assert sorted(r["display_name"] for r in kfp_server.recurring_runs.values()) == ["daily", "weekly"]


def test_schedule_refuses_a_five_field_cron_before_contacting_the_server(kfp_server, package):
    result = cli(
        "schedule", "--host", kfp_server.url, "--store-uri", "s3://b/p", "--package", str(package),
        "--cron", "0 3 * * *",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "6 fields" in result.stderr
    assert not kfp_server.pipelines and not kfp_server.recurring_runs


def test_submit_wait_reads_a_rotated_token_file_again(package, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("first")

    def rotate(run: dict) -> None:  # the kubelet renews a projected token while the run goes on
        server.token = "second"
        token_file.write_text("second")

    with FakePipelinesServer(token="first", states=["RUNNING", "SUCCEEDED"], on_run=rotate) as server:
        renewed = cli(
            *submit_args(server, package, "--wait", "--poll", "0.01", "--token-file", str(token_file))
        )
    assert renewed.exit_code == 0, renewed.output
    assert len(server.refused) == 1  # one poll refused, then the new token was read

    with FakePipelinesServer(token="first", states=["RUNNING", "SUCCEEDED"], on_run=rotate) as server:
        fixed = cli(*submit_args(server, package, "--wait", "--poll", "0.01"), env={"KFP_TOKEN": "first"})
    assert fixed.exit_code == 5 and "401" in fixed.stderr  # a token given by value cannot be renewed
