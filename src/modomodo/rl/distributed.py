"""How the RL update's processes find each other: one process, or one per GPU through torchrun.

``torch.distributed`` (and DeepSpeed on top of it) reads its rendezvous from ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. A launcher (torchrun, a
Kubeflow TrainJob) sets them for every process it starts; a pod that runs one plain process sets
none, and DeepSpeed then falls back to MPI discovery and fails (``No module named 'mpi4py'``).
:func:`ensure_rendezvous_env` gives such a process the environment of a one-rank job, and
:func:`train_processes` starts one process per GPU on this node with torchrun, each running the
same ``modomodo train`` entry point.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

import yaml

from modomodo.config import ExperimentConfig

RANK_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
"""Which process of how many this is; a launcher sets all three, a plain process none."""
ADDRESS_VARS = ("MASTER_ADDR", "MASTER_PORT")
"""Where rank 0 listens for the others."""
LOCAL_ADDRESS = "127.0.0.1"


def free_port(host: str = LOCAL_ADDRESS) -> int:
    """A TCP port nobody listens on now (the OS picks it), for a one-rank job's rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ensure_rendezvous_env(environ: MutableMapping[str, str] | None = None) -> bool:
    """Make ``environ`` (default ``os.environ``) a complete ``torch.distributed`` environment.

    Without any of ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` this is a single process: it becomes rank
    0 of 1, with ``MASTER_ADDR`` 127.0.0.1 and a free ``MASTER_PORT`` unless those are set (two
    runs on one machine then never collide). With all three, a launcher started it: nothing
    changes, but the address must be there too. Anything in between is a broken launch and raises
    ``RuntimeError`` naming the missing variables. True when the single-rank environment was set.
    """
    env = os.environ if environ is None else environ
    ranks = [name for name in RANK_VARS if env.get(name)]
    if not ranks:
        env.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
        env["MASTER_ADDR"] = env.get("MASTER_ADDR") or LOCAL_ADDRESS
        env["MASTER_PORT"] = env.get("MASTER_PORT") or str(free_port())
        return True
    missing = [name for name in (*RANK_VARS, *ADDRESS_VARS) if not env.get(name)]
    if missing:
        raise RuntimeError(
            f"incomplete torch.distributed environment: {', '.join(ranks)} set but {', '.join(missing)} "
            "missing; a launcher (torchrun, a TrainJob) sets all of RANK, LOCAL_RANK, WORLD_SIZE, "
            "MASTER_ADDR and MASTER_PORT, a single process none"
        )
    return False


def is_main_process(environ: MutableMapping[str, str] | None = None) -> bool:
    """Rank 0 (or a process outside any launcher): the one that writes outputs and metrics."""
    env = os.environ if environ is None else environ
    return int(env.get("RANK") or 0) == 0


def launch_command(processes: int, argv: list[str]) -> list[str]:
    """``python -m torch.distributed.run`` starting ``processes`` copies of ``modomodo <argv>`` on
    this node (``--standalone``: the rendezvous runs on a free local port); one process runs as a
    plain child (it sets its own one-rank rendezvous)."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if processes == 1:
        return [sys.executable, "-m", "modomodo.cli", *argv]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        "modomodo.cli",
        *argv,
    ]


FAILURE_FILE_ENV = "MODOMODO_FAILURE_FILE"
"""Where a child launched by :func:`train_processes` writes why it failed, for its parent."""


@contextmanager
def failure_recorded() -> Iterator[None]:
    """Around the training of a child of :func:`train_processes`: its exception, in words, goes
    to ``$MODOMODO_FAILURE_FILE`` (rank 0), so the parent can record why a pilot failed."""
    try:
        yield
    except BaseException as error:
        path = os.environ.get(FAILURE_FILE_ENV)
        if path and is_main_process():
            Path(path).write_text(f"{type(error).__name__}: {error}"[:2000])
        raise


class ChildFailed(RuntimeError):
    """The training processes of :func:`train_processes` failed; the message says why."""


def train_processes(
    cfg: ExperimentConfig,
    data_dir: Path,
    base_model: Path,
    out_dir: Path,
    *,
    run_id: str,
    processes: int,
    store_uri: str = "",
    resume: bool = False,
    metrics_port: int = 0,
    evaluate_to: Path | None = None,
):
    """The RL update as ``processes`` ranks on this node (one per GPU), each running ``modomodo
    train`` on ``cfg`` (written to ``out_dir/config.yaml`` with the store ``store_uri``); rank 0
    writes the outputs to ``out_dir`` as a single process would, and with ``evaluate_to`` then
    evaluates the model into that folder. Returns its ``TrainResult``."""
    from modomodo.rl.grpo import TrainResult

    if any(os.environ.get(name) for name in RANK_VARS):
        raise RuntimeError(
            f"train_processes runs torchrun, but this process is already rank {os.environ.get('RANK')} "
            f"of a launched job (WORLD_SIZE={os.environ.get('WORLD_SIZE')}); run one process per rank"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = cfg.to_dict()
    config["store"] = store_uri or cfg.store
    config_path = out_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=True))
    argv = ["train", "--preset", str(config_path), "--data", str(data_dir), "--base", str(base_model)]
    argv += ["--out", str(out_dir), "--run-id", run_id, "--metrics-port", str(metrics_port)]
    if resume:
        argv.append("--resume")
    if evaluate_to is not None:
        argv += ["--evaluate-out", str(evaluate_to)]
    failure = out_dir / "failure.txt"
    failure.unlink(missing_ok=True)
    env = {**os.environ, FAILURE_FILE_ENV: str(failure)}
    done = subprocess.run(launch_command(processes, argv), check=False, env=env)
    if done.returncode != 0:
        if failure.is_file():
            why = failure.read_text()
        elif done.returncode < 0:  # a plain child killed by a signal (no torchrun in between)
            signame = signal.Signals(-done.returncode).name
            why = f"killed by {signame} (the kernel's out-of-memory killer, an eviction or a kill)"
        else:
            why = f"exit code {done.returncode}; the failing rank's log is above"
        raise ChildFailed(f"the RL update's training process{'es' if processes > 1 else ''} failed: {why}")
    return TrainResult(**json.loads((out_dir / "train_summary.json").read_text()))
