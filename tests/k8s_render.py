"""Render and check Kubernetes output with the real tools (helm, kubectl kustomize,
kubernetes-validate, checkov) that ``scripts/fetch_tools.sh`` installs into ``.tools/bin``.

Shared by ``test_chart.py`` and ``test_manifests.py``. A missing tool fails the test with the
command that installs it; nothing is skipped.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "modomodo"
MANIFESTS = ROOT / "manifests"
TOOLS = ROOT / ".tools" / "bin"
CRDS = Path(__file__).resolve().parent / "crds"
CHECKOV_SKIPS = ROOT / "charts" / "checkov-skips.yaml"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas.
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")

FETCH_HINT = "run scripts/fetch_tools.sh (scripts/bootstrap.sh --test calls it)"


def tool(name: str) -> str:
    """Path of a deployment tool: .tools/bin first, then the venv's bin (kubernetes-validate)."""
    for folder in (TOOLS, Path(sys.executable).parent):
        path = folder / name
        if path.exists():
            return str(path)
    pytest.fail(f"{name} not found in {TOOLS} or {Path(sys.executable).parent}: {FETCH_HINT}", pytrace=False)


def run(argv: list[str], *, check: bool = True, cwd: Path = ROOT, env: dict | None = None):
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def helm_template(*args: str, chart: Path = CHART, namespace: str = "modomodo", check: bool = True):
    """``helm template modomodo CHART`` with extra arguments (``-f``, ``--set``)."""
    return run(
        [tool("helm"), "template", "modomodo", str(chart), "--namespace", namespace, *args], check=check
    )


def kustomize(folder: Path) -> str:
    return run([tool("kubectl"), "kustomize", str(folder)]).stdout


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a repeated mapping key, as the API server's decoder does
    (PyYAML keeps the last one silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
    if repeated:
        raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def documents(text: str) -> list[dict]:
    """The objects of a multi-document YAML stream (empty documents dropped)."""
    return [doc for doc in yaml.load_all(text, Loader=_UniqueKeyLoader) if doc]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    )
    return found[0]


def kubernetes_validate(text: str, tmp_path: Path) -> set[str]:
    """``kubernetes-validate --strict`` on every supported Kubernetes version; fails on any error
    and returns the kinds it could not check (custom resources), for ``validate_custom_resources``."""
    path = tmp_path / "rendered.yaml"
    path.write_text(text)
    unchecked: set[str] = set()
    for version in KUBERNETES_VERSIONS:
        result = run(
            [tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(path)], check=False
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0 and "ERROR" not in output, f"Kubernetes {version}:\n{output}"
        unchecked |= {
            line.split(" for kind ")[1].split()[0] for line in output.splitlines() if " for kind " in line
        }
    return unchecked


@cache
def _crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the vendored CRD's openAPIV3Schema, made strict: the API server
    prunes unknown fields silently, so a misspelt field would be lost without a word."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schemas[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = schema
    return schemas


def _strict(schema):
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


def validate_custom_resources(docs: list[dict], unchecked_kinds: set[str]) -> None:
    """Every custom resource against its vendored CRD schema (tests/crds, prometheus-operator
    v0.93.0); a kind kubernetes-validate skipped and no CRD here covers fails the test."""
    schemas = _crd_schemas()
    known_kinds = {kind for _, kind in schemas}
    assert unchecked_kinds <= known_kinds, f"no schema checks {sorted(unchecked_kinds - known_kinds)}"
    for doc in docs:
        schema = schemas.get((doc["apiVersion"], doc["kind"]))
        if schema is None:
            continue
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
        assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: " + "; ".join(
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
        )


def pod_specs(docs: list[dict]) -> Iterator[tuple[str, dict]]:
    """(kind/name, pod spec) of every workload in the output."""
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "Pod":
            yield f"{kind}/{name}", doc["spec"]
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            yield f"{kind}/{name}", doc["spec"]["template"]["spec"]
        elif kind == "CronJob":
            yield f"{kind}/{name}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def assert_pod_security(docs: list[dict]) -> int:
    """The restricted pod security the project requires, on every container of every pod;
    returns the number of containers checked."""
    checked = 0
    for where, spec in pod_specs(docs):
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot"
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: pod seccomp"
        assert pod.get("runAsUser", 0) > 0, f"{where}: pod runAsUser must not be root"
        assert spec.get("automountServiceAccountToken") is False, (
            f"{where}: mounts an API token it never uses"
        )
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
        mounts_tmp = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in spec.get("initContainers", []) + spec["containers"]:
            at = f"{where} container {container['name']}"
            ctx = container.get("securityContext", {})
            assert ctx.get("runAsNonRoot") is True, f"{at}: runAsNonRoot"
            assert ctx.get("readOnlyRootFilesystem") is True, f"{at}: readOnlyRootFilesystem"
            assert ctx.get("allowPrivilegeEscalation") is False, f"{at}: allowPrivilegeEscalation"
            assert ctx.get("privileged", False) is False, f"{at}: privileged"
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], f"{at}: capabilities drop ALL"
            assert not ctx.get("capabilities", {}).get("add"), f"{at}: adds capabilities"
            assert ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{at}: seccomp"
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{at}: requests"
            assert "memory" in resources.get("limits", {}), f"{at}: memory limit"
            # A read-only root needs a writable /tmp.
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and tmp[0]["name"] in mounts_tmp, f"{at}: no emptyDir at /tmp"
            checked += 1
    return checked


def checkov_skips() -> dict[str, str]:
    """check id -> reason, from charts/checkov-skips.yaml; every entry must give a reason."""
    entries = yaml.safe_load(CHECKOV_SKIPS.read_text())["skips"]
    skips = {entry["id"]: entry.get("reason", "").strip() for entry in entries}
    unexplained = sorted(check for check, reason in skips.items() if len(reason) < 20)
    assert not unexplained, f"{CHECKOV_SKIPS.name}: give each skip its reason: {unexplained}"
    return skips


def checkov_failures(folder: Path) -> set[tuple[str, str]]:
    """(check id, file: resource) of every failed checkov Kubernetes check on the YAML files in
    ``folder``, run offline and without any skip (the caller compares with the skip file)."""
    if shutil.which(tool("checkov")) is None:
        pytest.fail(f"checkov is not executable: {FETCH_HINT}", pytrace=False)
    result = run(
        [
            tool("checkov"),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "-o",
            "json",
            "--skip-download",
            "--quiet",
        ],
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    reports = json.loads(result.stdout) if result.stdout.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    failed = set()
    for report in reports:
        if report.get("check_type") != "kubernetes":
            continue
        assert report["summary"]["passed"] > 0, f"checkov checked nothing in {folder}"
        for check in report["results"]["failed_checks"]:
            failed.add((check["check_id"], f"{Path(check['file_path']).name}: {check['resource']}"))
    return failed
