"""The Makefile's own set-up is quiet: a clean run prints no probe noise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_python_probe_writes_nothing_to_stderr(tmp_path: Path) -> None:
    """Finding a Python 3.11+ (as a fresh machine's first `make demo` does) is silent."""
    done = subprocess.run(
        ["make", "-n", f"VENV={tmp_path / 'venv'}", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "-m venv" in done.stdout  # the probe found an interpreter for the new venv
