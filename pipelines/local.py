"""Run a pipeline with kfp's local runner: every component in a subprocess of this interpreter."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.pipelines import build_pipeline
from modomodo.pipelines.settings import ClusterSettings


@dataclass(frozen=True)
class LocalRun:
    """Where a local run left its report."""

    html: Path
    json: Path
    pipeline_root: Path

    def summary(self) -> dict:
        """The report's headline: the final mixture and its score against uniform and base."""
        return json.loads(self.json.read_text())["summary"]


LOCAL_PARALLELISM = 2
"""kfp's local runner runs at most two ``ParallelFor`` iterations at once."""


def local_settings(cfg: ExperimentConfig, retries: bool = False) -> ClusterSettings:
    """Steps on this machine: no retries unless asked (then the cluster's retry counts after a
    2 s wait: a local failure is no preemption to wait out), every core for a step that runs alone, an equal share
    for each of the pilots that run at once, no ``/metrics`` server (pilots running at once would
    want the same port; the Pushgateway gets the metrics)."""
    cores = os.cpu_count() or 1
    return ClusterSettings(
        gpus=0,
        retries=retries,
        retry_backoff="2s",
        metrics_port=0,
        threads=cores,
        loop_threads=max(1, cores // min(LOCAL_PARALLELISM, cfg.search.parallelism)),
    )


def run_locally(
    name: str,
    cfg: ExperimentConfig,
    output: Path,
    *,
    store_uri: str,
    pushgateway: str = "",
    cache: bool = False,
    arguments: dict | None = None,
    retries: bool = False,
) -> LocalRun:
    """Run pipeline ``name`` on ``cfg``; artifacts go under ``output/pipeline-root``, the report
        to ``output/report.html`` and ``output/report.json``. ``cache`` reuses the outputs of earlier
        local runs with the same inputs (``output/pipeline-root/.kfp_cache``). ``arguments`` adds
        pipeline parameters (``profile_prompts``, ...). Steps run with ``local_settings`` (``retries``:
    the cluster's retry policies, to rehearse a lost pod); ``gpus``
        is 0 (one training process; local steps use whatever device torch finds)."""
    from kfp import local

    output = Path(output).resolve()
    root = output / "pipeline-root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), enable_caching=cache)
    with warnings.catch_warnings():
        # kfp warns once a step that the cluster settings (resources, accelerator) do not apply here.
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner")
        task = build_pipeline(name, cfg, local_settings(cfg, retries))(
            config=cfg.to_dict(), store_uri=store_uri, pushgateway=pushgateway, **(arguments or {})
        )
    html, summary = output / "report.html", output / "report.json"
    shutil.copyfile(task.outputs["report"].path, html)
    shutil.copyfile(task.outputs["summary"].path, summary)
    return LocalRun(html=html, json=summary, pipeline_root=root)
