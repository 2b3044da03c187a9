"""Kubeflow pipelines built from ``modomodo.components``: ``mixture-search`` and ``train``.

Each pipeline module has ``NAME`` and ``build(cfg, cluster) -> pipeline``; the config shapes the
graph (waves, parallelism, data caching) and becomes the default of the ``config`` parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kfp import compiler

from modomodo.config import ExperimentConfig
from modomodo.pipelines import mixture_search, train
from modomodo.pipelines.settings import ClusterSettings

PIPELINES: dict[str, Callable] = {mixture_search.NAME: mixture_search.build, train.NAME: train.build}
"""Pipeline name -> builder."""


def build_pipeline(name: str, cfg: ExperimentConfig, cluster: ClusterSettings | None = None):
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}; pipelines: {sorted(PIPELINES)}")
    return PIPELINES[name](cfg, cluster)


def compile_pipeline(
    name: str, cfg: ExperimentConfig, package_path: Path, cluster: ClusterSettings | None = None
) -> Path:
    """Compile pipeline ``name`` to IR YAML at ``package_path``, with ``cfg`` as the default
    ``config`` argument."""
    package_path = Path(package_path)
    package_path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(
        build_pipeline(name, cfg, cluster), str(package_path), pipeline_parameters={"config": cfg.to_dict()}
    )
    return package_path
