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


def test_a_failed_install_shows_pips_last_lines_and_its_log(tmp_path):
    """bootstrap's pip output goes to .venv/install.log; a failed install (here: real pip asked
    for a torch that does not exist, with no package index) shows its last lines and the log's
    path, and stops."""
    (tmp_path / "scripts").mkdir()
    for name in ("scripts/bootstrap.sh", "pyproject.toml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "constraints.txt").write_text("torch==0.0.0\n")
    # no pip configuration of this machine (a local wheel folder) and no index: fails the same anywhere
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(PYTHON=sys.executable, PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull)
    done = subprocess.run(
        ["bash", "scripts/bootstrap.sh"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    log = tmp_path / ".venv/install.log"
    for text in (log.read_text(), done.stderr):  # pip's own words
        assert "ERROR: " in text and "torch==0.0.0" in text, text
    assert "all of it: .venv/install.log" in done.stderr
    assert not (tmp_path / ".venv/.modomodo-installed").exists()


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
