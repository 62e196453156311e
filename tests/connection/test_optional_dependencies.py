"""The embedded backend's dependencies are the extra ``memory``: without them the package
imports and serves Redis, and only a ``memory://`` URL is refused, naming what to install.

Each case runs in a fresh interpreter in which the missing module cannot be imported.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

#: Run after the blocking lines; prints what a user would see.
SCRIPT = """
import asyncio

import arketic_cache
from arketic_cache import ConfigurationError, RedisConnection, init_redis, init_redis_sync

RedisConnection(url="redis://127.0.0.1:1/0")  # a real server's URL needs no extra
attempts = {
    "RedisConnection": lambda: RedisConnection(url="memory://app"),
    "init_redis_sync": lambda: init_redis_sync(url="memory://"),
    "init_redis": lambda: asyncio.run(init_redis(url="memory://")),
}
for name, attempt in attempts.items():
    try:
        attempt()
    except ConfigurationError as exc:
        print(f"{name}: {exc}")
    else:
        raise SystemExit(f"{name} accepted memory:// without its extra")
"""


def run(prelude: str) -> subprocess.CompletedProcess[str]:
    source = textwrap.dedent(prelude) + SCRIPT
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_the_package_loads_no_embedded_backend() -> None:
    """fakeredis and lupa are imported for a ``memory://`` URL only, not by the package."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, arketic_cache, arketic_cache.testing\n"
            "print(sorted({'fakeredis', 'lupa'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("missing", ["fakeredis", "lupa"])
def test_memory_url_without_the_extra_names_it(missing: str) -> None:
    """With fakeredis (or lupa, which runs the Lua scripts) not installed, ``import
    arketic_cache`` works and every way to open ``memory://`` raises ConfigurationError
    saying ``pip install 'arketic-cache[memory]'``."""
    done = run(f"import sys\nsys.modules[{missing!r}] = None  # as if not installed\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "RedisConnection",
        "init_redis_sync",
        "init_redis",
    ]
    for line in lines:
        assert "pip install 'arketic-cache[memory]'" in line
        assert f"{missing} is not installed" in line


def test_memory_url_with_the_extra_works() -> None:
    """The control: with the extra installed (as here) the first attempt already succeeds,
    so the refusals above come from the missing module alone."""
    done = run("")
    assert done.returncode != 0
    assert "accepted memory:// without its extra" in done.stderr
