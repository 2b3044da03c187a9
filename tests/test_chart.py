"""The Helm chart (charts/modomodo) rendered by the real helm and checked by the real tools:
helm lint, values.schema.json, kubernetes-validate, the prometheus-operator CRD schemas, checkov,
and the pod security every pod must have. The upload Job's compile step runs for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from k8s_render import (
    CHART,
    ROOT,
    assert_pod_security,
    by_kind,
    checkov_failures,
    checkov_skips,
    documents,
    helm_template,
    kubernetes_validate,
    one,
    run,
    tool,
    validate_custom_resources,
)

PROD = CHART / "values-prod.yaml"
VALUES = {"default": [], "prod": ["-f", str(PROD)]}


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {name: helm_template(*args).stdout for name, args in VALUES.items()}


@pytest.fixture
def chart_with_files(tmp_path) -> Path:
    """A copy of the chart with a small dashboard and alert file in files/ (what `observe`
    writes there), to render the dashboard ConfigMaps and the PrometheusRule."""
    chart = tmp_path / "modomodo"
    shutil.copytree(CHART, chart)
    (chart / "files" / "dashboards").mkdir(parents=True, exist_ok=True)
    for old in (chart / "files" / "dashboards").glob("*.json"):
        old.unlink()
    dashboard = {"title": "modomodo training", "uid": "modomodo-training", "panels": []}
    (chart / "files" / "dashboards" / "training_overview.json").write_text(json.dumps(dashboard))
    alerts = {
        "groups": [
            {
                "name": "modomodo",
                "rules": [
                    {
                        "alert": "ModomodoTrainingStalled",
                        "expr": "time() - modomodo_rl_last_step_timestamp_seconds > 900",
                        "for": "5m",
                        "labels": {"severity": "warning"},
                        "annotations": {"summary": "{{ $labels.run }} made no step for 15 minutes"},
                    }
                ],
            }
        ]
    }
    (chart / "files" / "alerts.yaml").write_text(yaml.safe_dump(alerts))
    return chart


@pytest.mark.parametrize("values", sorted(VALUES))
def test_helm_lint_strict(values):
    result = run([tool("helm"), "lint", "--strict", str(CHART), *VALUES[values]])
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", sorted(VALUES))
def test_render_is_valid_kubernetes_and_custom_resources(rendered, values, tmp_path):
    docs = documents(rendered[values])
    unchecked = kubernetes_validate(rendered[values], tmp_path)
    # PrometheusRule too once files/alerts.yaml exists; validate_custom_resources checks them all.
    assert {"PodMonitor", "ServiceMonitor"} <= unchecked <= {"PodMonitor", "ServiceMonitor", "PrometheusRule"}
    validate_custom_resources(docs, unchecked)


@pytest.mark.parametrize("values", sorted(VALUES))
def test_every_pod_runs_restricted(rendered, values):
    docs = documents(rendered[values])
    # pushgateway + the upload Job's compile and upload containers
    assert assert_pod_security(docs) == 3


def test_pod_security_check_catches_a_container_that_may_escalate(rendered):
    docs = documents(rendered["default"])
    job = one(docs, "Job")
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(AssertionError, match="allowPrivilegeEscalation"):
        assert_pod_security(docs)


BAD_VALUES = [
    # (--set argument, text helm's schema error must contain)
    ("pushgateway.port=notaport", "pushgateway"),
    ("pushgateway.port=70000", "pushgateway"),
    ("upload.enabled=maybe", "enabled"),
    ("study.backend=mysql", "backend"),
    ("resourceQuota.hard.pods=lots", "pods"),
    ("image.digest=sha256:abc", "digest"),
    ("s3.existingSecret=", "existingSecret"),
    ("kfp.host=ml-pipeline:8888", "host"),
    ("upload.pipelines={mixture-search,nosuch}", "pipelines"),
    ("podSecurity.runAsUser=0", "runAsUser"),
    ("unknownTopLevel=1", "unknownTopLevel"),
    ("pushgateway.persistance.enabled=true", "persistance"),
    ("monitoring.podMonitor.podLabel.value=not a label", "value"),
]


@pytest.mark.parametrize(("setting", "named"), BAD_VALUES, ids=[s for s, _ in BAD_VALUES])
def test_schema_rejects_a_bad_value(setting, named):
    result = helm_template("--set", setting, check=False)
    assert result.returncode != 0, f"--set {setting} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert named in result.stderr, result.stderr


def _merged(base: dict, override: dict) -> dict:
    """Values as helm merges a -f file over values.yaml (maps merge, everything else replaces)."""
    merged = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merged(base[key], value) if both else value
    return merged


def test_schema_is_a_valid_json_schema_and_the_values_files_meet_it(tmp_path):
    schema = CHART / "values.schema.json"
    run([tool("check-jsonschema"), "--check-metaschema", str(schema)])
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    prod = tmp_path / "prod.json"
    prod.write_text(json.dumps(_merged(defaults, yaml.safe_load(PROD.read_text()))))
    run([tool("check-jsonschema"), "--schemafile", str(schema), str(CHART / "values.yaml"), str(prod)])


def test_every_value_is_typed():
    """Each leaf of values.yaml has a type in the schema, and every object is closed."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value, node, path):
        assert "type" in node, f"{path or 'values'}: untyped"
        if isinstance(value, dict) and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path}: accepts unknown keys"
            for key, sub in value.items():
                assert key in node["properties"], f"{path}.{key}: not in the schema"
                walk(sub, node["properties"][key], f"{path}.{key}".lstrip("."))

    walk(values, schema, "")


def test_role_is_namespaced_and_least_privilege(rendered):
    docs = documents(rendered["default"])
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    role = one(docs, "Role")
    grants = {
        (group, resource, verb, tuple(rule.get("resourceNames", [])))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert not any("*" in (g, r, v) for g, r, v, _ in grants), "wildcards"
    trainer = {("trainer.kubeflow.org", "trainjobs", v, ()) for v in ("create", "get", "patch", "delete")}
    observe = {("", "pods", v, ()) for v in ("get", "list")}
    kfp = {
        ("", "configmaps", "get", ("kfp-launcher",)),
        ("", "secrets", "get", ("mlpipeline-minio-artifact",)),
        ("argoproj.io", "workflowtaskresults", "create", ()),
        ("argoproj.io", "workflowtaskresults", "patch", ()),
    }
    assert grants == trainer | observe | kfp
    binding = one(docs, "RoleBinding")
    account = one(docs, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "modomodo"}
    ]
    no_trainer = documents(helm_template("--set", "rbac.trainer=false").stdout)
    assert not any(r["apiGroups"] == ["trainer.kubeflow.org"] for r in one(no_trainer, "Role")["rules"])


def test_no_credential_is_rendered(rendered):
    """S3 credentials are an existing Secret; the only Secret the chart makes is the SQLite URL."""
    for values, text in rendered.items():
        secrets = by_kind(documents(text), "Secret")
        for secret in secrets:
            assert set(secret.get("stringData", {})) == {"url"}, secret
            assert secret["stringData"]["url"].startswith("sqlite:"), secret
        assert len(secrets) == (1 if values == "default" else 0)


def test_study_storage_is_sqlite_on_a_pvc_by_default_and_postgresql_by_value(rendered):
    from sqlalchemy.engine import make_url

    from modomodo.pipelines.settings import ClusterSettings

    settings = ClusterSettings()
    docs = documents(rendered["default"])
    secret = one(docs, "Secret")
    assert secret["metadata"]["name"] == settings.study_secret
    url = make_url(secret["stringData"]["url"])
    # The file lies on the volume where the compiled search step mounts it.
    assert url.drivername == "sqlite" and url.database == f"{settings.study_mount_path}/optuna.db"
    pvc = one(docs, "PersistentVolumeClaim", "modomodo-study")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "uninstall would lose trials"
    assert _compile_env(docs)["STUDY_PVC"] == "modomodo-study"

    postgres = documents(helm_template("--set", "study.backend=postgresql").stdout)
    assert not by_kind(postgres, "Secret")
    assert "modomodo-study" not in {p["metadata"]["name"] for p in by_kind(postgres, "PersistentVolumeClaim")}
    assert _compile_env(postgres)["STUDY_PVC"] == ""


def _compile_env(docs: list[dict]) -> dict[str, str]:
    (compile_step,) = one(docs, "Job")["spec"]["template"]["spec"]["initContainers"]
    return {e["name"]: e["value"] for e in compile_step["env"]}


def test_monitors_select_the_pushgateway_and_the_labelled_rl_pods(rendered):
    from modomodo.pipelines.settings import ClusterSettings

    docs = documents(rendered["default"])
    deployment = one(docs, "Deployment")
    service = one(docs, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert deployment["spec"]["replicas"] == 1

    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True and endpoint["port"] == service["spec"]["ports"][0]["name"]

    pods = one(docs, "PodMonitor")
    assert pods["spec"]["selector"]["matchLabels"] == {"modomodo.io/metrics": "true"}
    (endpoint,) = pods["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    address = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "__address__"]
    # The port the RL step serves /metrics on, as the pipelines compile it.
    assert address[0]["replacement"] == f"${{1}}:{ClusterSettings().metrics_port}"
    compile_env = _compile_env(docs)
    assert compile_env["METRICS_PORT"] == str(ClusterSettings().metrics_port)
    assert (
        compile_env["PUSHGATEWAY"]
        == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    )

    labelled = documents(helm_template("--set", "monitoring.labels.release=kube-prometheus-stack").stdout)
    for kind in ("PodMonitor", "ServiceMonitor"):
        assert one(labelled, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_network_policies_admit_prometheus_and_the_namespace_only(rendered):
    docs = documents(rendered["default"])
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(docs, "NetworkPolicy")}
    gateway = policies["modomodo-pushgateway"]
    assert gateway["egress"] == [] and set(gateway["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = gateway["ingress"]
    assert rule["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    ]
    assert rule["ports"] == [{"port": 9091, "protocol": "TCP"}]
    rl = policies["modomodo-rl"]
    assert rl["podSelector"] == {"matchLabels": {"modomodo.io/metrics": "true"}}
    assert {"from": [{"podSelector": {}}]} in rl["ingress"]
    upload = policies["modomodo-upload"]
    assert upload["ingress"] == []
    assert {"port": 8888, "protocol": "TCP"} in upload["egress"][1]["ports"]
    job_labels = one(docs, "Job")["spec"]["template"]["metadata"]["labels"]
    assert upload["podSelector"]["matchLabels"].items() <= job_labels.items()


def test_quota_limits_and_gpu_priority(rendered):
    docs = documents(rendered["default"])
    quota = one(docs, "ResourceQuota")["spec"]["hard"]
    assert quota["requests.nvidia.com/gpu"] == "8"
    # The quota caps memory limits, so the LimitRange must default them for pods that set none.
    limits = one(docs, "LimitRange")["spec"]["limits"][0]
    assert limits["default"]["memory"] and limits["defaultRequest"]["cpu"]
    priority = one(docs, "PriorityClass")
    assert priority["metadata"]["name"] == "modomodo-gpu" and priority["globalDefault"] is False
    prod = documents(rendered["prod"])
    assert one(prod, "ResourceQuota")["spec"]["hard"]["requests.nvidia.com/gpu"] == "64"


def test_dashboards_and_alerts_from_files(chart_with_files, tmp_path):
    text = helm_template(chart=chart_with_files).stdout
    docs = documents(text)
    validate_custom_resources(docs, kubernetes_validate(text, tmp_path))
    maps = [m for m in by_kind(docs, "ConfigMap") if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert [m["metadata"]["name"] for m in maps] == ["modomodo-dashboard-training-overview"]
    source = (chart_with_files / "files" / "dashboards" / "training_overview.json").read_text()
    assert json.loads(maps[0]["data"]["training_overview.json"]) == json.loads(source)
    assert maps[0]["metadata"]["annotations"] == {"grafana_folder": "modomodo"}

    rule = one(docs, "PrometheusRule")
    alerts = yaml.safe_load((chart_with_files / "files" / "alerts.yaml").read_text())
    # Copied verbatim: the annotation's {{ $labels.run }} is Prometheus's template, not Helm's.
    assert rule["spec"]["groups"] == alerts["groups"]

    relabelled = documents(
        helm_template(
            "--set",
            "dashboards.label=my_dashboards",
            "--set",
            "dashboards.namespace=monitoring",
            chart=chart_with_files,
        ).stdout
    )
    (moved,) = [m for m in by_kind(relabelled, "ConfigMap") if "my_dashboards" in m["metadata"]["labels"]]
    assert moved["metadata"]["namespace"] == "monitoring"
    off = documents(
        helm_template(
            "--set",
            "dashboards.enabled=false",
            "--set",
            "monitoring.prometheusRule.enabled=false",
            chart=chart_with_files,
        ).stdout
    )
    assert not by_kind(off, "ConfigMap") and not by_kind(off, "PrometheusRule")


def test_a_broken_dashboard_or_alert_file_fails_the_render_with_its_name(chart_with_files):
    (chart_with_files / "files" / "dashboards" / "broken.json").write_text("{not json")
    result = helm_template(chart=chart_with_files, check=False)
    assert result.returncode != 0 and "files/dashboards/broken.json is not valid JSON" in result.stderr
    (chart_with_files / "files" / "dashboards" / "broken.json").unlink()
    (chart_with_files / "files" / "alerts.yaml").write_text("rules: []\n")
    result = helm_template(chart=chart_with_files, check=False)
    assert result.returncode != 0 and "files/alerts.yaml has no `groups:`" in result.stderr


def test_notes_tell_how_to_create_the_secrets_and_submit():
    result = run(
        [
            tool("helm"),
            "install",
            "modomodo",
            str(CHART),
            "--namespace",
            "ml",
            "--dry-run=client",
            "--set",
            "study.backend=postgresql",
            "--set",
            "s3.existingSecret=team-s3",
        ]
    )
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "kubectl -n ml create secret generic team-s3" in notes
    assert "kubectl -n ml create secret generic modomodo-study" in notes
    assert "--s3-secret team-s3" in notes and "--pushgateway http://modomodo-pushgateway:9091" in notes


def test_hook_annotations_only_with_helm(rendered):
    job = one(documents(rendered["default"]), "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    plain = one(documents(helm_template("--set", "upload.helmHook=false").stdout), "Job")
    assert "annotations" not in plain["metadata"]


def _container_env(container: dict, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODOMODO_")}
    env.update({e["name"]: e["value"] for e in container["env"]})
    env.update(overrides, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return env


def _run_container(container: dict, env: dict) -> subprocess.CompletedProcess:
    """Run a rendered container's command and args here, as its entrypoint would in the pod."""
    return subprocess.run(
        container["command"] + container["args"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def test_upload_job_compile_step_compiles_the_pipelines_for_its_image(rendered, tmp_path):
    """The Job's compile container, run as rendered (its command, args and environment) with
    this checkout's modomodo: both pipelines, every step on the chart's image, the Pushgateway as
    the default config's, the overrides applied."""
    docs = documents(helm_template("--set", "upload.overrides={train.steps=7}", "-f", str(PROD)).stdout)
    (compile_step,) = one(docs, "Job")["spec"]["template"]["spec"]["initContainers"]
    packages = tmp_path / "pipelines"
    result = _run_container(
        compile_step, _container_env(compile_step, PACKAGES=str(packages), HOME=str(tmp_path))
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in packages.glob("*.yaml")) == ["mixture-search.yaml", "train.yaml"]
    spec = next(yaml.safe_load_all((packages / "train.yaml").read_text()))
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    # light steps on the CPU image, GPU steps on the GPU image
    assert images == {"registry.example.com/ml/modomodo:0.1.0", "registry.example.com/ml/modomodo-gpu:0.1.0"}
    config = spec["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert config["name"] == "paper" and config["train"]["steps"] == 7
    assert config["pushgateway"] == "http://modomodo-pushgateway:9091"
    # values-prod keeps studies in PostgreSQL: no step mounts the SQLite volume.
    assert "pvcMount" not in (packages / "mixture-search.yaml").read_text()


def test_upload_job_compiles_the_search_step_onto_the_sqlite_study_volume(rendered, tmp_path):
    docs = documents(rendered["default"])
    (compile_step,) = one(docs, "Job")["spec"]["template"]["spec"]["initContainers"]
    packages = tmp_path / "pipelines"
    env = _container_env(compile_step, PACKAGES=str(packages), HOME=str(tmp_path))
    result = _run_container(
        {**compile_step, "args": [*compile_step["args"], "--pipeline=mixture-search"]}, env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    platform = list(yaml.safe_load_all((packages / "mixture-search.yaml").read_text()))[1]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    mounts = {name: e["pvcMount"] for name, e in executors.items() if "pvcMount" in e}
    assert list(mounts) == ["exec-search-mixture"]
    (mount,) = mounts["exec-search-mixture"]
    pvc = one(docs, "PersistentVolumeClaim", "modomodo-study")["metadata"]["name"]
    assert mount["constant"] == pvc
    secret_url = one(docs, "Secret")["stringData"]["url"]
    assert secret_url == f"sqlite:///{mount['mountPath']}/optuna.db"


def test_upload_job_uploads_each_package_as_a_pipeline_version(rendered, tmp_path):
    from test_pipelines_submit import FakePipelinesServer

    spec = one(documents(rendered["default"]), "Job")["spec"]["template"]["spec"]
    packages = tmp_path / "pipelines"
    (compile_step,) = spec["initContainers"]
    env = _container_env(compile_step, PACKAGES=str(packages), HOME=str(tmp_path))
    assert _run_container(compile_step, env).returncode == 0
    (upload,) = spec["containers"]
    with FakePipelinesServer() as kfp:
        env = _container_env(upload, PACKAGES=str(packages), HOME=str(tmp_path), KFP_HOST=kfp.url)
        first = _run_container(upload, env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert sorted(p["display_name"] for p in kfp.pipelines.values()) == ["mixture-search", "train"]
        assert not kfp.runs, "upload only: no run is started"
        # A re-run (helm upgrade with the same packages) reuses the content-named versions.
        assert _run_container(upload, env).returncode == 0
        assert (
            sum(len(v) for v in kfp.versions.values()) == 4
        )  # each pipeline: its default + one content-named


def test_checkov_finds_nothing_unlisted_in_the_rendered_chart(rendered, chart_with_files, tmp_path):
    folder = tmp_path / "rendered"
    folder.mkdir()
    for name, text in rendered.items():
        (folder / f"{name}.yaml").write_text(text)
    (folder / "with-files.yaml").write_text(helm_template(chart=chart_with_files).stdout)
    skips = checkov_skips()
    failed = checkov_failures(folder)
    unlisted = sorted(f for f in failed if f[0] not in skips)
    assert not unlisted, f"checkov failures not in charts/checkov-skips.yaml: {unlisted}"
    stale = sorted(set(skips) - {check for check, _ in failed})
    assert not stale, f"skips that no longer fail, remove them: {stale}"


def test_fetch_tools_is_idempotent_and_installs_the_pinned_tools():
    """A second run changes nothing and takes no download; the versions are the pinned ones."""
    import time

    start = time.monotonic()
    run(["bash", "scripts/fetch_tools.sh"])
    assert time.monotonic() - start < 30, "fetch_tools.sh redid its work"
    assert "v4.1.4" in run([tool("helm"), "version", "--short"]).stdout
    assert "v1.35.2" in run([tool("kubectl"), "version", "--client"]).stdout
    assert run([tool("checkov"), "--version"]).stdout.strip() == "3.3.30"


def test_the_podmonitor_selects_the_pods_the_pipelines_label(rendered, tmp_path):
    """The compiled RL steps (the pods that serve /metrics) carry the label the PodMonitor selects."""
    from modomodo.config import load_config
    from modomodo.pipelines import compile_pipeline

    monitor = one(documents(rendered["default"]), "PodMonitor")
    package = compile_pipeline("train", load_config("smoke"), tmp_path / "train.yaml")
    executors = list(yaml.safe_load_all(package.read_text()))[1]["platforms"]["kubernetes"]["deploymentSpec"]
    labels = executors["executors"]["exec-train-and-evaluate"].get("podMetadata", {}).get("labels", {})
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
