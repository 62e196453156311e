"""``python -m arketic_cache demo`` on the embedded backend, a real server and a down one."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import redis

from arketic_cache.testing import RedisServer, free_port

#: The demo's lines: blank; a heading (not indented, ending with a colon); a result (two
#: spaces, the call, `` -> ``, the value); a note (four spaces and prose, the library's log
#: records among them as ``logged (level): ...``).
LINE = re.compile(r"|\S.*:|  \S.*? -> .*|    \S.*")


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The demo as ``make demo`` runs it, with stderr in the same output as stdout."""
    return subprocess.run(
        [sys.executable, "-m", "arketic_cache", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )


def demo_output(env: dict[str, str]) -> str:
    result = run_demo(env)
    assert result.returncode == 0, result.stdout
    return result.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without REDIS_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    return {**env, **extra}


def results(out: str) -> dict[str, str]:
    """``{call: value}`` of the result lines."""
    found = {}
    for line in out.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and " -> " in line:
            label, value = line.split(" -> ", 1)
            found[label.strip()] = value
    return found


def unformatted(out: str) -> list[str]:
    """The lines that fit none of the demo's line kinds (a bare log line, a traceback)."""
    return [line for line in out.splitlines() if not LINE.fullmatch(line)]


def unexplained_numbers(out: str) -> list[str]:
    """Result lines showing a bare number with no note under them saying what it is."""
    lines = out.splitlines()
    return [
        line
        for line, after in zip(lines, [*lines[1:], ""], strict=True)
        if re.fullmatch(r"  \S.*? -> -?\d+(\.\d+)?", line) and not after.startswith("    ")
    ]


@pytest.fixture(scope="module")
def embedded() -> str:
    return demo_output(clean_env())


def test_embedded_backend(embedded: str) -> None:
    """Without REDIS_URL the demo says it uses the embedded backend and shows each operation."""
    out = embedded
    assert "embedded in-process backend" in out
    for shown in ("get('user:123:profile')", "increment('stats:logins', 5)", "flush_pattern"):
        assert shown in out
    assert "-> 6" in out  # 1 + 5
    limited = [line for line in out.splitlines() if line.startswith("  is_allowed(")]
    assert [line.split("-> ")[1] for line in limited] == [
        "(True, 1, 2)",
        "(True, 2, 1)",
        "(True, 3, 0)",
        "(False, 3, 0)",
    ]
    found = results(out)
    assert found["rotate_session(id): the old id now reads"] == "None"
    assert found["refresh_session(the same token again)"] == "None"
    assert found["delete_user_sessions('u-123')  (everywhere)"] == "2"
    assert found["flush_pattern('*', allow_all=True)"] != "0"  # the demo cleans up after itself


def test_embedded_health_and_metrics(embedded: str) -> None:
    """The health report on the embedded backend: healthy, INFO-based checks unknown (not
    failed); the metrics count the demo's own lookups and reach the Prometheus form."""
    found = results(embedded)
    assert found["['status']"] == "'healthy'"
    assert (found["connection"], found["breaker"]) == ("'ok'", "'ok'")
    assert found["memory"] == found["persistence"] == "'unknown'"
    assert "INFO is not available on the embedded backend" in embedded
    assert found["as_health_json()['status']"] == "'pass'"
    assert found["cache 'demo:' errors"] == "0"
    assert int(found["cache 'demo:' l2_hits"]) >= 1
    assert 'arketic_cache_misses_total{cache="demo:",kind="cache"}' in embedded


def test_embedded_messaging(embedded: str) -> None:
    """The chat channel delivers the typed message to the demo's subscription and skips a
    raw string; the stream resumes after an id and its group's entries, claimed from a dead
    worker, end acknowledged with none pending."""
    found = results(embedded)
    assert found["ChatChannel(chat_id='1*:x').render()"] == "'chat:1%2A%3Ax'"
    assert found["publish(chat 'general', ChatMessage)"] == "1"
    assert found["receive(): channel, message"] == "('general', 'Hello')"
    assert found["stats()['decode_errors']"] == "1"
    assert found["read_after(chat, id of the first)"] == "['Hi Ada']"
    assert found["create_group(chat, 'moderation', start='0')"] == "True"
    assert found["read_group(..., 'worker-1')"] == "2"
    assert found["claim(..., 'worker-2', min_idle=0)"] == "2"
    assert found["ack(...) those entries"] == "2"
    assert found["pending(chat, 'moderation')"] == "0"
    assert found["trim(chat, max_length=1)"] == "1"


def test_every_line_is_part_of_the_demo(embedded: str) -> None:
    """No bare log line: the refresh-token reuse warning is a note under the call that
    caused it."""
    assert unformatted(embedded) == []
    lines = embedded.splitlines()
    at = lines.index(next(line for line in lines if "the same token again" in line))
    assert lines[at + 1] == (
        "    logged (warning): a refresh token was used twice: its token family is revoked"
    )


def test_numbers_are_explained(embedded: str) -> None:
    """Each number has a note saying what it counts: the session count says where the two
    sessions came from."""
    assert unexplained_numbers(embedded) == []
    lines = embedded.splitlines()
    at = lines.index(next(line for line in lines if "after 2 more new_session()" in line))
    assert lines[at].endswith("-> 2")
    assert "live sessions of u-123: the two just created" in lines[at + 1]
    assert results(embedded)["client hits"] == "2"
    hits = next(n for n, line in enumerate(lines) if line.startswith("  client hits "))
    assert "lookups that found a value" in lines[hits + 1]


def test_redis_down() -> None:
    """With REDIS_URL on a port nobody listens on, the demo shows the degradation: the
    spec's defaults, the reason, and no traceback; it exits with 0."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run_demo(clean_env(REDIS_URL=url, REDIS_CONNECT_TIMEOUT="0.2"))
    out = result.stdout
    assert result.returncode == 0, out
    assert "Traceback" not in out
    assert unformatted(out) == []
    assert "is unreachable:" in out
    assert "PING at start-up failed: ConnectionError" in out
    assert "Redis was unreachable throughout:" in out
    found = results(out)
    assert found["set('user:123:profile', {...}, ttl=300)"] == "False"
    assert found["get('user:123:profile')"] == "None"
    assert found["increment('stats:logins')"] == "None"
    assert found["is_allowed('rate:api:123:chat', limit=3) #4"] == "(True, 0, 3)"
    assert found["new_session({user_id, email, role})"] == "None"
    assert found["flush_pattern('*', allow_all=True)"] == "0"
    assert found["publish(chat 'general', ChatMessage)"] == "0"
    assert found["read_after(chat, id of the first)"] == "[]"
    assert "receive(): channel, message" not in found  # no subscription without a server
    assert "degraded: allowed without Redis" in out
    assert unexplained_numbers(out) == []
    assert found["['status']"] == "'error'"
    assert found["connection"] == "'critical'"
    assert found["as_health_json()['status']"] == "'fail'"
    assert int(found[f"127.0.0.1:{url.rsplit(':', 1)[1]} failures"]) >= 3


@pytest.mark.redis
def test_real_server(redis_server: RedisServer) -> None:
    """With REDIS_URL the demo uses that server, never prints its password, and leaves
    none of its keys behind."""
    out = demo_output(clean_env(REDIS_URL=redis_server.url))
    assert f"127.0.0.1:{redis_server.port}" in out
    assert redis_server.password not in out
    assert "embedded" not in out
    assert unformatted(out) == []
    found = results(out)
    assert found["['status']"] == "'healthy'"
    assert found["memory"] == "'ok'"
    assert "no maxmemory" in out  # the harness' server has none: no made-up percentage
    assert found["replication"] == "'ok'"
    assert found["receive(): channel, message"] == "('general', 'Hello')"
    assert found["pending(chat, 'moderation')"] == "0"
    assert unexplained_numbers(out) == []
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as client:
        assert [key for key in client.scan_iter("*") if "demo" in key] == []
