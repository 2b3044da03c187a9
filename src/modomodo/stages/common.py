"""What every stage shares: its metrics, its artifact store, the reward check on curated data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from modomodo.config import ExperimentConfig
from modomodo.data.schema import Example
from modomodo.metrics import StageMetrics, mixture_label


def check_reward_kinds(cfg: ExperimentConfig, train: Mapping[str, list[Example]]) -> None:
    """The config check of rewards against answer kinds, on the curated data (a domain read from a
    path has the answer kinds its rows have): before any model loads."""
    cfg.check_reward_kinds({domain: {e.answer_kind for e in examples} for domain, examples in train.items()})


def local_store(cfg: ExperimentConfig, workdir: Path):
    """The configured artifact store, or ``<workdir>/artifacts`` on local disk."""
    from modomodo.store import ArtifactStore

    return ArtifactStore.from_uri(cfg.store or str((workdir / "artifacts").resolve()))


def stage_metrics(
    cfg: ExperimentConfig, run_id: str, stage: str, mixture: Mapping[str, float] | None = None
) -> StageMetrics:
    """The metrics of one stage; ``mixture`` is what trained the policy the stage works on (none for
    data, base-policy and search stages: their ``mixture`` label stays empty)."""
    return StageMetrics(
        run=run_id, stage=stage, mixture=mixture_label(mixture or {}), gateway=cfg.pushgateway
    )
