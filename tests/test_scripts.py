"""The README's two set-up commands: their scripts run (the test command is the one running this)."""

from __future__ import annotations

import subprocess
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
