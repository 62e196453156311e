"""The declared dependencies: the redis-py range CI tests at both ends, and the embedded
backend as an extra rather than in every production install."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import redis
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def requirement(name: str, specs: list[str]) -> Requirement:
    """The one requirement on ``name`` among ``specs``."""
    found = [Requirement(spec) for spec in specs if Requirement(spec).name == name]
    assert len(found) == 1, specs
    return found[0]


def test_installed_redis_py_is_in_the_declared_range() -> None:
    """The suite runs on a redis-py the package accepts (in each of CI's venvs)."""
    declared = requirement("redis", PROJECT["dependencies"])
    assert declared.specifier.contains(redis.__version__), (redis.__version__, declared)
    assert Version(metadata.version("redis")) == Version(redis.__version__)


def test_oldest_job_pins_the_declared_lower_bound() -> None:
    """``make test-oldest`` tests exactly the oldest redis-py pyproject.toml accepts (CI
    runs it after ``make test``), and the range stops below a major release."""
    declared = requirement("redis", PROJECT["dependencies"])
    bounds = {spec.operator: Version(spec.version) for spec in declared.specifier}
    assert set(bounds) == {">=", "<"}, declared
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"^REDIS_PY_OLDEST := (\S+)$", makefile, re.M)
    assert pinned is not None
    assert Version(pinned.group(1)) == bounds[">="]
    assert bounds["<"] == Version(str(bounds["<"].major)) > bounds[">="]  # a major: 9, not 8.2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci.index("make test") < ci.index("make test-oldest")


def test_embedded_backend_is_an_extra() -> None:
    """fakeredis (and lupa, through its ``lua`` extra) come with ``arketic-cache[memory]``
    only; the dev extra, which ``make test`` and ``make demo`` install, includes it."""
    core = {Requirement(spec).name for spec in PROJECT["dependencies"]}
    assert not core & {"fakeredis", "lupa"}, core
    extras = PROJECT["optional-dependencies"]
    assert "lua" in requirement("fakeredis", extras["memory"]).extras
    assert "memory" in requirement("arketic-cache", extras["dev"]).extras
