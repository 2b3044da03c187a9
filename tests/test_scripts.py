"""The repository scripts: the README's two set-up commands (the test command is the one running this) and the GPU smoke."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_bootstrap_for_the_main_job_succeeds_after_a_test_install():
    done = _bash("scripts/bootstrap.sh")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_main_command_reaches_the_cli():
    done = _bash("scripts/run.sh", "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--output" in done.stdout, done.stdout


def test_gpu_smoke_says_why_it_stops_where_no_gpu_is_visible():
    env = {**os.environ, "PY": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        ["bash", "scripts/gpu_smoke.sh"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no CUDA GPU visible" in done.stderr
