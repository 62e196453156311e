"""The README is executable: every Python block runs as pasted and passes ``mypy --strict``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[str]:
    """The README's Python blocks, in order."""
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def written(tmp_path: Path) -> list[Path]:
    """Each block as a script of its own."""
    paths = []
    for n, source in enumerate(blocks(), 1):
        path = tmp_path / f"readme_block_{n}.py"
        path.write_text(source, encoding="utf-8")
        paths.append(path)
    return paths


def test_the_readme_has_its_examples() -> None:
    """The extraction finds the blocks (a changed fence would otherwise test nothing)."""
    assert len(blocks()) >= 6


@pytest.mark.parametrize("n", range(1, len(blocks()) + 1))
def test_block_runs_as_pasted(n: int, tmp_path: Path) -> None:
    """Block ``n`` runs in a fresh interpreter without error, warning or Redis of the user's."""
    script = written(tmp_path)[n - 1]
    # A block that relied on the environment would reach this closed port and fail.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    env["PYTHONWARNINGS"] = "error"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no log line: nothing degraded
    assert done.stdout.strip(), "a block shows what it does"


def test_blocks_pass_mypy_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every block type-checks with the project's settings (the ones the README recommends)."""
    monkeypatch.chdir(ROOT)
    paths = [str(path) for path in written(tmp_path)]
    out, err, status = mypy_api.run(
        ["--config-file", str(ROOT / "mypy.ini"), "--no-incremental", *paths]
    )
    assert status == 0, out + err
