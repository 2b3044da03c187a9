"""manifests/: the kustomize base rendered from the chart (scripts/render_manifests.sh) and the dev
and prod overlays, built by the real ``kubectl kustomize`` and checked like the chart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from k8s_render import (
    MANIFESTS,
    ROOT,
    assert_pod_security,
    by_kind,
    checkov_failures,
    checkov_skips,
    documents,
    kubernetes_validate,
    kustomize,
    one,
    run,
    tool,
    validate_custom_resources,
)

OVERLAYS = {"base": "modomodo", "dev": "modomodo-dev", "prod": "modomodo"}


def folder(name: str) -> Path:
    return MANIFESTS / "base" if name == "base" else MANIFESTS / "overlays" / name


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    return {name: kustomize(folder(name)) for name in OVERLAYS}


def test_base_is_the_chart_rendered_now():
    result = run(["bash", "scripts/render_manifests.sh", "--check"], check=False, env=_env())
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


def test_render_check_reports_a_stale_base(tmp_path):
    """--check fails, naming the fix, when the committed base differs from the chart's render."""
    copy = tmp_path / "repo"
    for part in ("charts", "manifests", "scripts"):
        shutil.copytree(ROOT / part, copy / part)
    base = copy / "manifests" / "base" / "modomodo.yaml"
    base.write_text(base.read_text().replace('requests.nvidia.com/gpu: "8"', 'requests.nvidia.com/gpu: "9"'))
    result = run(["bash", "scripts/render_manifests.sh", "--check"], check=False, cwd=copy, env=_env())
    assert result.returncode == 1
    assert "out of date; run scripts/render_manifests.sh" in result.stderr
    run(["bash", "scripts/render_manifests.sh"], cwd=copy, env=_env())
    assert base.read_text() == (MANIFESTS / "base" / "modomodo.yaml").read_text()


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "HELM": tool("helm")}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_is_valid_kubernetes_and_custom_resources(built, overlay, tmp_path):
    docs = documents(built[overlay])
    unchecked = kubernetes_validate(built[overlay], tmp_path)
    validate_custom_resources(docs, unchecked)
    assert assert_pod_security(docs) == 3


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_puts_everything_in_its_namespace(built, overlay):
    namespace = OVERLAYS[overlay]
    docs = documents(built[overlay])
    assert one(docs, "Namespace")["metadata"]["name"] == namespace
    cluster_scoped = {"Namespace", "PriorityClass"}
    for doc in docs:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"]["namespace"] == namespace, f"{doc['kind']}/{doc['metadata']['name']}"
    (subject,) = one(docs, "RoleBinding")["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": "modomodo", "namespace": namespace}
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    # Monitors select in their own namespace (no namespaceSelector naming the base's).
    for kind in ("PodMonitor", "ServiceMonitor"):
        assert "namespaceSelector" not in one(docs, kind)["spec"]
    assert "managed-by: Helm" not in built[overlay]


def test_overlays_keep_the_base_resources(built):
    """Same resources everywhere; prod only drops the SQLite study storage for PostgreSQL."""

    def ids(name):
        return {
            (d["kind"], d["metadata"]["name"]) for d in documents(built[name]) if d["kind"] != "Namespace"
        }

    assert ids("dev") == ids("base")
    assert ids("base") - ids("prod") == {
        ("Secret", "modomodo-study"),
        ("PersistentVolumeClaim", "modomodo-study"),
    }
    assert ids("prod") <= ids("base")


def test_overlays_patch_what_they_say(built):
    dev, prod = documents(built["dev"]), documents(built["prod"])
    assert one(dev, "ResourceQuota")["spec"]["hard"]["requests.nvidia.com/gpu"] == "2"
    assert one(prod, "ResourceQuota")["spec"]["hard"]["requests.nvidia.com/gpu"] == "64"
    for kind in ("PodMonitor", "ServiceMonitor"):
        assert one(prod, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert "release" not in one(dev, kind)["metadata"]["labels"]

    def preset(docs):
        (compile_step,) = one(docs, "Job")["spec"]["template"]["spec"]["initContainers"]
        return {e["name"]: e["value"] for e in compile_step["env"]}["PRESET"]

    assert (preset(dev), preset(prod)) == ("smoke", "paper")


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_pipelines_mount_only_a_study_volume_the_overlay_has(built, overlay):
    docs = documents(built[overlay])
    (compile_step,) = one(docs, "Job")["spec"]["template"]["spec"]["initContainers"]
    volume = {e["name"]: e["value"] for e in compile_step["env"]}["STUDY_PVC"]
    claims = {p["metadata"]["name"] for p in by_kind(docs, "PersistentVolumeClaim")}
    assert volume in claims if volume else "modomodo-study" not in claims
    assert bool(volume) == (overlay != "prod")


def test_upload_job_compiles_for_the_image_the_overlay_sets(tmp_path):
    """An overlay's `images:` changes the Job's image; its replacement keeps the image the
    pipelines are compiled for (MODOMODO_IMAGE) the same."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    kustomization = copy / "overlays" / "prod" / "kustomization.yaml"
    spec = yaml.safe_load(kustomization.read_text())
    spec["images"] = [
        {"name": "ghcr.io/modomodo/modomodo", "newName": "registry.example.com/modomodo", "newTag": "9.9.9"}
    ]
    kustomization.write_text(yaml.safe_dump(spec))
    job = one(documents(kustomize(copy / "overlays" / "prod")), "Job")
    (compile_step,) = job["spec"]["template"]["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in compile_step["env"]}
    assert compile_step["image"] == env["MODOMODO_IMAGE"] == "registry.example.com/modomodo:9.9.9"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/modomodo:9.9.9"


def test_secret_templates_are_examples_and_real_ones_are_ignored():
    examples = sorted(p.name for p in (MANIFESTS / "secrets").iterdir())
    assert examples == ["s3.env.example", "study.env.example"]
    keys = {
        line.split("=", 1)[0]
        for line in (MANIFESTS / "secrets" / "s3.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    from modomodo.pipelines.settings import ClusterSettings

    assert keys == set(ClusterSettings().s3_secret_keys)
    ignored = run(
        ["git", "check-ignore", "manifests/secrets/s3.env", "manifests/secrets/study.env"], check=False
    )
    assert ignored.returncode == 0 and len(ignored.stdout.split()) == 2


def test_checkov_finds_nothing_unlisted_in_the_overlays(built, tmp_path):
    out = tmp_path / "built"
    out.mkdir()
    for name, text in built.items():
        (out / f"{name}.yaml").write_text(text)
    skips = checkov_skips()
    unlisted = sorted(f for f in checkov_failures(out) if f[0] not in skips)
    assert not unlisted, f"checkov failures not in charts/checkov-skips.yaml: {unlisted}"
