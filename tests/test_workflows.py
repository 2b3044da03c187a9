"""The GitHub workflows: valid against GitHub's workflow schema (check-jsonschema's vendored copy),
clean under zizmor, and the retrain workflow's own steps run here, as written, against the fake
KFP server (token and TLS required) and a SeaweedFS store: a run that succeeds is gated and
promoted, a failed run and an Out-Score regression fail the job."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from test_pipelines_submit import FakePipelinesServer

from modomodo.acceptance import read_accepted
from modomodo.report import Contender, ReportData, compare
from modomodo.report_page import build_report
from modomodo.store import S3Store

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CI, RETRAIN = WORKFLOWS / "ci.yml", WORKFLOWS / "retrain.yml"


def tool(name: str) -> str:
    """A CLI installed with the test extra; missing is a failure that says how to install it."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` not found: install the test extra (scripts/bootstrap.sh --test)", pytrace=False
        )
    return path


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    return {("on" if key is True else key): value for key, value in doc.items()}


# Schema and audit --------------------------------------------------------------------------------


def test_workflows_validate_against_the_github_workflow_schema(tmp_path):
    check = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    result = subprocess.run([*check, str(CI), str(RETRAIN)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"  # the check does catch a mistake: a job without runs-on
    broken.write_text(RETRAIN.read_text().replace("    runs-on: ubuntu-latest\n", "", 1))
    assert subprocess.run([*check, str(broken)], capture_output=True).returncode != 0


def test_workflows_pass_a_zizmor_audit(tmp_path):
    audit = [tool("zizmor"), "--offline", "--persona", "auditor", "--no-progress"]
    result = subprocess.run([*audit, str(WORKFLOWS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # and the audit does find the faults it is here for: injection, unpinned actions, credentials
    (tmp_path / "bad.yml").write_text(
        "name: bad\non: issues\npermissions: write-all\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
    )
    bad = subprocess.run([*audit, str(tmp_path / "bad.yml")], capture_output=True, text=True)
    assert bad.returncode != 0
    for finding in ("template-injection", "unpinned-uses", "artipacked", "excessive-permissions"):
        assert finding in bad.stdout + bad.stderr, finding


def all_steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


@pytest.mark.parametrize("path", [CI, RETRAIN], ids=["ci", "retrain"])
def test_workflow_hardening(path):
    workflow = load(path)
    assert workflow["permissions"] in ({}, {"contents": "read"})
    for step in all_steps(workflow):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
        assert "${{" not in step.get("run", ""), f"expression in a run script: {step['run']}"


def test_ci_runs_ruff_and_the_readmes_test_command():
    runs = [step.get("run", "") for step in all_steps(load(CI))]
    readme = (ROOT / "README.md").read_text()
    test_command = "bash scripts/test.sh"
    assert test_command in readme and test_command in runs
    assert any("ruff check" in run and "ruff format --check" in run for run in runs)


def test_retrain_triggers_and_jobs():
    workflow = load(RETRAIN)
    on = workflow["on"]
    assert any(p.startswith("src/modomodo/presets") for p in on["push"]["paths"])
    assert on["schedule"][0]["cron"].count(" ") == 4
    assert {"preset", "tolerance", "build_images"} <= set(on["workflow_dispatch"]["inputs"])
    assert workflow["concurrency"]["cancel-in-progress"] is False  # two retrains would race to promote
    images, retrain = workflow["jobs"]["images"], workflow["jobs"]["retrain"]
    assert "scripts/build_images.sh --push" in [s.get("run") for s in images["steps"]]
    assert retrain["needs"] == "images"
    assert [s["run"] for s in retrain["steps"] if "retrain.sh" in s.get("run", "")] == [
        f"scripts/retrain.sh {step}" for step in ("compile", "submit", "gate")
    ]


# The retrain job's steps, run here ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    import trustme

    ca, folder = trustme.CA(), tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    cert.private_key_pem.write_to_path(str(folder / "server.key"))
    return ca.cert_pem.bytes().decode(), (folder / "server.pem", folder / "server.key")


class Cluster:
    """What the retrain job talks to: the fake KFP server (token + TLS) and a SeaweedFS store.
    A created run "executes" by publishing a report whose Out-Score the test chose, trained on the
    mixture the run was given, at reports/<run name> as the `report` step does."""

    TOKEN = "kfp-ci-token"

    def __init__(self, s3_server, tls, tmp: Path) -> None:
        self.s3, self.tls, self.tmp = s3_server, tls, tmp
        self.out_score = 0.0
        self.new_store()

    def new_store(self) -> None:
        self.prefix = f"retrain/{uuid.uuid4().hex}"
        self.store = S3Store(
            self.s3.bucket,
            self.prefix,
            endpoint_url=self.s3.endpoint,
            access_key=self.s3.access_key,
            secret_key=self.s3.secret_key,
        )

    def execute(self, run: dict) -> None:
        config = run["runtime_config"]["parameters"]["config"]
        domains = list(config["data"]["domains"])
        mixture = config["train"]["mixture"] or {d: 1 / len(domains) for d in domains}
        trained = Contender("trained", "x", mixture, {"in_score": 0.5, "out_score": self.out_score})
        data = ReportData(
            experiment=config["name"],
            target="out_score",
            domains=tuple(domains),
            splits={},
            contenders=compare("out_score", {"in_score": 0.1, "out_score": 0.1}, trained),
        )
        folder = self.tmp / run["display_name"]
        build_report(data, folder)
        self.store.put_dir(folder, f"reports/{run['display_name']}", {"experiment": config["name"]})

    def server(self, states) -> FakePipelinesServer:
        return FakePipelinesServer(
            states=states,
            error="task rl-update failed: OOMKilled",
            token=self.TOKEN,
            tls=self.tls[1],
            on_run=self.execute,
        )

    def run_job(self, server: FakePipelinesServer | None, run_name: str, steps=("submit", "gate")):
        """The retrain job's ``scripts/retrain.sh`` steps (those in ``steps``) in order, with the
        job's and each step's env as the workflow sets them, stopping at the first that fails, as
        GitHub does. Returns (the failed step's name or None, its exit code, all output)."""
        job = load(RETRAIN)["jobs"]["retrain"]
        values = {  # what GitHub would put in for each ${{ }} of the job's and steps' env
            "PRESET": "smoke",
            "TOLERANCE": "0.02",
            "RUN_NAME": run_name,
            "KFP_HOST": server.url if server else "",
            "STORE_URI": f"s3://{self.s3.bucket}/{self.prefix}",
            "MODOMODO_IMAGE": "",
            "KFP_TOKEN": self.TOKEN,
            "KFP_CA_PEM": self.tls[0],
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
            "MODOMODO_S3_ENDPOINT": self.s3.endpoint,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KFP_", "AWS_"))}
        env.update(BUILD_DIR=str(self.tmp / "build"), POLL_SECONDS="0.05")
        for name, value in job["env"].items():
            env[name] = values[name] if "${{" in str(value) else str(value)
        output = ""
        for step in job["steps"]:
            run = step.get("run", "")
            if not run.startswith("scripts/retrain.sh ") or run.split()[-1] not in steps:
                continue  # checkout, setup-python and the install are this test's own environment
            step_env = {**env, **{k: values[k] for k in step.get("env", {})}}
            done = subprocess.run(
                ["bash", "-c", run], cwd=ROOT, env=step_env, capture_output=True, text=True, timeout=600
            )
            output += done.stdout + done.stderr
            if done.returncode != 0:
                return step["name"], done.returncode, output
        return None, 0, output


@pytest.fixture(scope="module")
def cluster(s3_server, tls, tmp_path_factory):
    """The cluster side, with the job's compile step run once for every test."""
    cluster = Cluster(s3_server, tls, tmp_path_factory.mktemp("retrain"))
    failed, _, output = cluster.run_job(None, "compile", steps=("compile",))
    assert failed is None and (cluster.tmp / "build" / "train.yaml").is_file(), output
    return cluster


SUBMIT_STEP = "submit with the last accepted mixture and wait"
GATE_STEP = "gate on the Out-Score against the last accepted run"


def test_retrain_job_submits_waits_gates_and_promotes_then_trains_on_the_accepted_mixture(cluster):
    cluster.new_store()
    cluster.out_score = 0.40
    with cluster.server(["PENDING", "RUNNING", "SUCCEEDED"]) as server:
        failed, _, output = cluster.run_job(server, "retrain-1")
    assert failed is None, output
    (run,) = server.runs
    assert run["display_name"] == "retrain-1"
    assert run["runtime_config"]["parameters"]["config"]["train"]["mixture"] == {}  # none accepted yet
    assert "PENDING" in output and "RUNNING" in output and "succeeded" in output
    first = read_accepted(cluster.store, "smoke")
    assert (first.run, first.out_score) == ("retrain-1", 0.40)

    # an accepted run with a non-uniform mixture, as after a search: the next retrain trains on it
    cluster.store.put_bytes(
        "accepted/smoke.json", json.dumps({**first.to_dict(), "mixture": {"det": 0.7, "sci": 0.3}}).encode()
    )
    cluster.out_score = 0.39  # within the tolerance of 0.02
    with cluster.server(["RUNNING", "SUCCEEDED"]) as server:
        failed, _, output = cluster.run_job(server, "retrain-2")
    assert failed is None, output
    (run,) = server.runs
    assert run["runtime_config"]["parameters"]["config"]["train"]["mixture"] == {"det": 0.7, "sci": 0.3}
    accepted = read_accepted(cluster.store, "smoke")
    assert (accepted.run, accepted.out_score, accepted.mixture) == (
        "retrain-2",
        0.39,
        {"det": 0.7, "sci": 0.3},
    )


def test_retrain_job_fails_when_the_run_fails(cluster):
    cluster.new_store()
    with cluster.server(["RUNNING", "FAILED"]) as server:
        failed, code, output = cluster.run_job(server, "retrain-failed")
    assert (failed, code) == (SUBMIT_STEP, 1), output
    assert "FAILED" in output and "task rl-update failed: OOMKilled" in output
    assert read_accepted(cluster.store, "smoke") is None


def test_retrain_job_fails_on_an_out_score_regression(cluster):
    cluster.new_store()
    cluster.out_score = 0.50
    with cluster.server(["SUCCEEDED"]) as server:
        assert cluster.run_job(server, "retrain-good")[0] is None
    cluster.out_score = 0.47  # 0.03 worse: beyond the tolerance of 0.02
    with cluster.server(["SUCCEEDED"]) as server:
        failed, code, output = cluster.run_job(server, "retrain-worse")
    assert (failed, code) == (GATE_STEP, 1), output
    assert "REGRESSION" in output and "retrain-good" in output
    assert read_accepted(cluster.store, "smoke").run == "retrain-good"


def test_retrain_job_without_the_token_stops_at_submit(cluster):
    cluster.new_store()
    with cluster.server(["SUCCEEDED"]) as server:
        server.token = "rotated"
        failed, code, output = cluster.run_job(server, "retrain-unauthorized")
    assert (failed, code) == (SUBMIT_STEP, 5), output
    assert "401" in output and not server.runs


def test_retrain_script_refuses_an_unknown_step_and_missing_settings():
    usage = subprocess.run(["bash", "scripts/retrain.sh", "deploy"], cwd=ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("KFP_HOST", "STORE_URI")}
    missing = subprocess.run(
        ["bash", "scripts/retrain.sh", "gate"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "STORE_URI" in missing.stderr
