"""Submit a compiled pipeline to a Kubeflow Pipelines server with ``kfp.Client``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml


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


def submit(
    package_path: Path,
    *,
    host: str,
    arguments: dict,
    experiment: str,
    run_name: str,
    namespace: str | None = None,
    client=None,
) -> Submission:
    """Create (or reuse) the pipeline and its content-named version, then start a run in
    ``experiment`` (created when missing). ``client`` defaults to ``kfp.Client(host=host)``."""
    import kfp

    package_path = Path(package_path)
    name = package_name(package_path)
    version_name = version_name_for(package_path)
    client = client or kfp.Client(host=host, namespace=namespace)
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(package_path), pipeline_name=name).pipeline_id
    version_id, created = _find_version(client, pipeline_id, version_name), False
    if version_id is None:
        version_id = client.upload_pipeline_version(
            str(package_path), pipeline_version_name=version_name, pipeline_id=pipeline_id
        ).pipeline_version_id
        created = True
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    run = client.run_pipeline(
        experiment_id=experiment_id,
        job_name=run_name,
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=version_id,
    )
    url = f"{host.rstrip('/')}/#/runs/details/{run.run_id}"
    return Submission(pipeline_id, version_id, version_name, created, run.run_id, url)


def _find_version(client, pipeline_id: str, version_name: str) -> str | None:
    predicate = {"operation": "EQUALS", "key": "display_name", "stringValue": version_name}
    found = client.list_pipeline_versions(pipeline_id, filter=json.dumps({"predicates": [predicate]}))
    versions = found.pipeline_versions or []
    return versions[0].pipeline_version_id if versions else None
