"""``modomodo submit``: the real ``kfp.Client`` against a small fake of the Kubeflow Pipelines REST API
(v2beta1) on loopback, which records what the client asked for."""

from __future__ import annotations

import json
import threading
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import typer
import yaml
from typer.testing import CliRunner

from modomodo.cli_pipelines import register
from modomodo.config import load_config
from modomodo.pipelines import compile_pipeline
from modomodo.pipelines.submit import package_name, submit, version_name_for

API = "/apis/v2beta1"


class FakePipelinesServer:
    """Pipelines, versions, experiments and runs in memory, served the way the KFP API server does."""

    def __init__(self) -> None:
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: list[dict] = []
        self.uploads: list[bytes] = []
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

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
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

            def do_POST(self) -> None:
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
                    run = {**json.loads(body), "run_id": str(uuid.uuid4())}
                    server.runs.append(run)
                    return self._reply(run)
                self._reply({"error": f"no route {url.path}"}, 404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

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
    assert version_name_for(package) == version_name_for(package)
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
    resources = spec["deploymentSpec"]["executors"]["exec-rl-update"]["container"]["resources"]
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
