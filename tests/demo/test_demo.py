"""``python -m arketic_cache demo`` on the embedded backend and on a real server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from arketic_cache.testing import RedisServer


def run_demo(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "arketic_cache", "demo"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def test_embedded_backend() -> None:
    """Without REDIS_URL the demo says it uses the embedded backend and shows each operation."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    out = run_demo(env)
    assert "embedded in-process backend" in out
    for shown in ("get('user:123:profile')", "increment('stats:logins', 5)", "flush_pattern"):
        assert shown in out
    assert "-> 6" in out  # 1 + 5
    limited = [line for line in out.splitlines() if "is_allowed(" in line]
    assert [line.split("-> ")[1] for line in limited] == [
        "(True, 1, 2)",
        "(True, 2, 1)",
        "(True, 3, 0)",
        "(False, 3, 0)",
    ]
    results = {
        line.split("-> ")[0].strip(): line.split("-> ")[1]
        for line in out.splitlines()
        if "-> " in line
    }
    assert results["rotate_session(id): the old id now reads"] == "None"
    assert results["refresh_session(the same token again)"] == "None"
    assert results["delete_user_sessions('u-123')  (everywhere)"] == "2"


@pytest.mark.redis
def test_real_server(redis_server: RedisServer) -> None:
    """With REDIS_URL the demo uses that server and never prints its password."""
    out = run_demo({**os.environ, "REDIS_URL": redis_server.url})
    assert f"127.0.0.1:{redis_server.port}" in out
    assert redis_server.password not in out
    assert "embedded" not in out
