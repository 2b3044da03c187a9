"""What component bodies share: config, run ids, artifact metadata, the artifact store.

A lightweight component ships only its function's source to the pod, so shared code lives in
this installed module (part of the runtime image) and bodies import it. Nothing here imports kfp:
artifacts are duck-typed (``.uri``, ``.path``, ``.metadata``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modomodo.config import ExperimentConfig, config_from_dict
from modomodo.metrics import METRICS_PORT_ENV
from modomodo.versions import versions

if TYPE_CHECKING:
    # Imported where a store is opened: the store's S3 client (boto3) costs ~0.15 s in each
    # step's fresh process, and the planning, fit and search steps open none.
    from modomodo.store import ArtifactStore


def experiment_config(config: dict[str, Any], pushgateway: str = "") -> ExperimentConfig:
    """Rebuild the validated experiment config from a pipeline's ``config`` parameter; the stage
    metrics push to ``pushgateway``, the run's parameter, when one is given (it can differ from the
    compiled config's)."""
    cfg = config_from_dict(integral_floats_to_int(config))
    return dataclasses.replace(cfg, pushgateway=pushgateway) if pushgateway else cfg


def integral_floats_to_int(value: Any) -> Any:
    """Undo what a pipeline parameter does to numbers: KFP carries a ``dict`` as a protobuf
    ``Struct``, where every number is a double, so ``steps: 60`` arrives as ``60.0``. Integral
    floats become ints again; float config fields accept ints, so nothing else changes."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral_floats_to_int(v) for v in value]
    return value


def fingerprint(*inputs: Any) -> str:
    """A short hash of JSON-able inputs: the same inputs give the same run id, so a retried pod
    resumes its own checkpoints and never another run's."""
    text = json.dumps(integral_floats_to_int(list(inputs)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def open_store(store_uri: str, cfg: ExperimentConfig) -> ArtifactStore:
    """The artifact store of the pipeline parameter, else of the config; one of them is required
    so that checkpoints and heavy outputs survive the pod."""
    uri = store_uri or cfg.store
    if not uri:
        raise ValueError(
            "no artifact store: pass the pipeline parameter store_uri (file:///... or s3://bucket/prefix)"
        )
    from modomodo.store import ArtifactStore

    return ArtifactStore.from_uri(uri)


def annotate(artifact: Any, cfg: ExperimentConfig, **metadata: Any) -> None:
    """Record on an output artifact what produced it: experiment, seeds, package versions, plus
    ``metadata`` (mixture, run id, store URL, ...)."""
    artifact.metadata.update(
        {
            "experiment": cfg.name,
            "data_seed": cfg.data.seed,
            "train_seed": cfg.train.seed,
            "versions": versions(),
            **metadata,
        }
    )


def publish(store: ArtifactStore, local_dir: Path, key: str, metadata: dict[str, Any]) -> str:
    """Copy a heavy output (shards, a model) into the artifact store; returns its URL."""
    store.put_dir(Path(local_dir), key, metadata=metadata)
    return store.url_for(key)


STORE_REFERENCE = "store-reference.json"
"""File of an output artifact whose content is kept in the artifact store instead (see
``store_by_reference``): ``{"store": <store URI>, "key": <key>, "url": <URL>}``."""


def store_by_reference(
    store: ArtifactStore,
    local_dir: Path,
    key: str,
    metadata: dict[str, Any],
    artifact: Any,
    keep: tuple[str, ...] = (),
) -> str:
    """Put ``local_dir`` into the store as ``key`` and let ``artifact`` refer to it: its folder
    gets the reference and copies of the small files ``keep``, not the heavy ones, so a model is
    stored once (the pipeline root would otherwise hold a second copy). Returns the URL."""
    url = publish(store, local_dir, key, metadata)
    out = Path(artifact.path)
    out.mkdir(parents=True, exist_ok=True)
    for name in keep:
        shutil.copy(Path(local_dir) / name, out / name)
    reference = {"store": store.uri, "key": key, "url": url}
    (out / STORE_REFERENCE).write_text(json.dumps(reference, indent=2, sort_keys=True) + "\n")
    return url


def local_copy(artifact: Any, scratch: Path) -> Path:
    """The local folder of an input artifact: its own, or for one that refers to the store, a
    verified download into ``scratch``."""
    reference = Path(artifact.path) / STORE_REFERENCE
    if not reference.is_file():
        return Path(artifact.path)
    from modomodo.store import ArtifactStore

    entry = json.loads(reference.read_text())
    target = Path(scratch) / "stored"
    ArtifactStore.from_uri(entry["store"]).get_dir(entry["key"], target)
    return target


def with_mixture(cfg: ExperimentConfig, mixture: dict[str, float]) -> ExperimentConfig:
    """A new config: ``cfg`` training on ``mixture`` (validated against the domains); empty keeps
    the config's. ``cfg`` itself, validated once, is never changed."""
    if not mixture:
        return cfg
    train = dataclasses.replace(cfg.train, mixture=integral_floats_to_int(mixture))
    return dataclasses.replace(cfg, train=train).validate()


def with_replicate_seed(cfg: ExperimentConfig, replicate: int) -> ExperimentConfig:
    """A new config: ``cfg`` training with seed ``train.seed + replicate`` (replicate 0 is ``cfg``)."""
    if not replicate:
        return cfg
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=cfg.train.seed + replicate))


def metrics_port() -> int:
    """The port to serve ``/metrics`` on, from the pod's environment (set by the pipeline's
    cluster settings); 0 when unset."""
    raw = os.environ.get(METRICS_PORT_ENV, "0") or "0"
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError(f"{METRICS_PORT_ENV}={raw!r}: must be a port number (0-65535)")
    return int(raw)


def check_gpus(gpus: int) -> None:
    """Fail clearly when the pod asked for GPUs that torch cannot see (a missing device plugin or
    driver would otherwise train on CPU for days)."""
    if gpus > 0:
        import torch

        if torch.cuda.device_count() < gpus:
            raise RuntimeError(f"the step requested {gpus} GPU(s) but torch sees {torch.cuda.device_count()}")


def log_metrics(artifact: Any, values: dict[str, float]) -> None:
    """Log scalars on a ``Metrics`` artifact, leaving out non-finite ones: KFP stores metrics in a
    protobuf ``Struct``, which cannot hold NaN (an R² of constant scores is NaN)."""
    for name, value in values.items():
        if math.isfinite(value):
            artifact.log_metric(name, float(value))
