"""The command line as operators run it: a real subprocess (``arketic-cache`` and ``python -m
arketic_cache``) against a real server and the embedded backend, with the faults that matter:
a server that is down or refuses the password, a restore killed halfway, a server killed
mid-export."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from arketic_cache.testing import RedisServer, free_port

from .helpers import TTLS, client, populate, same_within_a_second, snapshot

SCRIPT = Path(sys.executable).with_name("arketic-cache")


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    command = [sys.executable, "-m", "arketic_cache", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def start(*argv: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "arketic_cache", *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def db(server: RedisServer, number: int) -> str:
    url = server.url.rsplit("/", 1)[0] + f"/{number}"
    with redis.Redis.from_url(url) as admin:
        admin.flushdb()  # a db of our own throwaway server
    return url


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is installed by pip")
def test_the_console_script_runs(tmp_path: Path) -> None:
    done = subprocess.run([str(SCRIPT), "health", "--url", "memory://script"], capture_output=True)
    assert done.returncode == 0


def test_the_embedded_backend_in_a_process_of_its_own(tmp_path: Path) -> None:
    health = cli("health", "--json", "--url", "memory://process")
    assert health.returncode == 0
    assert json.loads(health.stdout)["level"] == "ok"
    assert json.loads(cli("keys", "*", "--json", "--url", "memory://process").stdout) == []
    file = tmp_path / "empty.jsonl"
    exported = cli("export", "*", "-o", str(file), "--json", "--url", "memory://process")
    assert (exported.returncode, json.loads(exported.stdout)["keys"]) == (0, 0)
    assert "exported: 0 keys" in exported.stderr  # progress goes to stderr
    restored = cli("restore", str(file), "--json", "--url", "memory://process")
    assert (restored.returncode, json.loads(restored.stdout)["written"]) == (0, 0)


@pytest.mark.redis
def test_every_reading_command_on_a_real_server(redis_server: RedisServer, tmp_path: Path) -> None:
    url = db(redis_server, 4)
    populate(url)
    for command in (["health"], ["info"], ["keys", "*"], ["analyze"], ["flush", "user:*"]):
        done = cli(*command, "--json", "--url", url)
        assert done.returncode == 0, done.stderr
        json.loads(done.stdout)
        human = cli(*command, "--url", url)
        assert human.returncode == 0
        assert redis_server.password not in human.stdout + human.stderr
    table = cli("keys", "user:*", "--url", url).stdout.splitlines()
    assert table[0].split() == ["key", "type", "ttl_s", "memory_bytes"]
    assert table[2].split()[:2] == ["user:1:preferences", "hash"]


@pytest.mark.redis
def test_export_then_restore_through_processes(redis_server: RedisServer, tmp_path: Path) -> None:
    source, target = db(redis_server, 5), db(redis_server, 6)
    populate(source)
    file = tmp_path / "namespace.jsonl"
    assert cli("export", "*", "-o", str(file), "--url", source).returncode == 0
    restored = cli("restore", str(file), "--json", "--url", target)
    assert json.loads(restored.stdout)["written"] == len(TTLS)
    assert same_within_a_second(snapshot(source), snapshot(target))
    assert cli("verify", str(file), "--url", target).returncode == 0


def test_a_server_that_is_down_is_critical() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    health = cli("health", "--json", "--url", url)
    assert health.returncode == 2
    assert json.loads(health.stdout)["level"] == "critical"
    keys = cli("keys", "*", "--url", url)
    assert keys.returncode == 2
    assert keys.stderr.startswith("arketic-cache: Redis failed: ")
    assert keys.stderr.count("\n") == 1


@pytest.mark.redis
def test_a_wrong_password_is_critical_and_never_printed(redis_server: RedisServer) -> None:
    url = f"redis://:not-the-password-{redis_server.password[:4]}@127.0.0.1:{redis_server.port}/0"
    for command in (["health"], ["info"], ["keys", "*"], ["analyze"]):
        done = cli(*command, "--url", url)
        assert done.returncode == 2, command
        assert "not-the-password" not in done.stdout + done.stderr


def write_strings(file: Path, count: int) -> None:
    """An export file of ``count`` string keys (without a TTL)."""
    with file.open("w", encoding="utf-8") as out:
        out.write('{"format":"arketic-export","version":1,"exported_at_ms":1,"pattern":"*"}\n')
        for n in range(count):
            out.write(f'{{"key":"k:{n}","type":"string","expire_at_ms":null,"value":"v{n}"}}\n')
        out.write(f'{{"end":true,"keys":{count}}}\n')


@pytest.mark.redis
def test_a_restore_killed_halfway_and_run_again_ends_in_the_same_state(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    url, total = db(redis_server, 7), 60_000
    file = tmp_path / "big.jsonl"
    write_strings(file, total)
    process = start("restore", str(file), "--url", url)
    with client(url) as r:
        deadline = time.monotonic() + 60
        while r.dbsize() == 0:
            # Polled: nothing signals a restore's progress from another process.
            assert time.monotonic() < deadline
            assert process.poll() is None
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        halfway = r.dbsize()
    assert 0 < halfway < total  # killed with part of the file written
    again = cli("restore", str(file), "--json", "--url", url, timeout=120)
    report = json.loads(again.stdout)
    assert again.returncode == 0
    assert report["existing"] >= halfway - 1  # keys are whole or absent: none rewritten
    assert report["written"] + report["existing"] == total
    with client(url) as r:
        assert r.dbsize() == total
        assert r.mget([f"k:{n}" for n in range(0, total, 997)]) == [
            f"v{n}".encode() for n in range(0, total, 997)
        ]


@pytest.mark.redis
def test_the_server_killed_mid_export_is_a_clear_error(
    fresh_server: RedisServer, tmp_path: Path
) -> None:
    with client(fresh_server.url) as r, r.pipeline(transaction=False) as pipe:
        for n in range(100_000):
            pipe.set(f"k:{n}", "x" * 100)
        pipe.execute()
    file = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    process = start("export", "*", "-o", str(file), "--url", fresh_server.url)
    deadline = time.monotonic() + 60
    while not partial.exists() or partial.stat().st_size < 100_000:
        # Polled: the export's progress is only visible in its file.
        assert time.monotonic() < deadline
        assert process.poll() is None
        time.sleep(0.005)
    fresh_server.kill()
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.strip().splitlines()[-1].startswith("arketic-cache: Redis failed: ")
    assert fresh_server.password not in err
    assert not file.exists()
    assert not partial.exists()  # nothing half-written is left


def test_flush_asks_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, flush asks; only a 'y' deletes (the embedded backend, in one process:
    a restore in the same run writes the keys first)."""
    file = tmp_path / "two.jsonl"
    write_strings(file, 2)
    script = (
        "import contextlib, io, sys; from arketic_cache._cli import main; url = 'memory://ask'\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['restore', {str(file)!r}, '--url', url])\n"
        "sys.exit(main(['flush', 'k:*', '--json', '--url', url]))\n"
    )
    for answer, deleted in (("n\n", 0), ("y\n", 2)):
        done = typed_into(script, answer)
        assert done.returncode == 0, done.stderr
        prompt, _, report = done.stdout.partition("? [y/N] ")
        assert prompt == "delete 2 key(s) matching 'k:*'"
        assert json.loads(report)["deleted"] == deleted


def typed_into(script: str, answer: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with a terminal as stdin and ``answer`` typed into it (the terminal
    keeps it until the prompt reads it)."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(follower)
        os.write(leader, answer.encode())
        out, err = process.communicate(timeout=60)
    finally:
        os.close(leader)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_bench_runs_the_harness() -> None:
    done = cli("bench", "--help")
    assert done.returncode == 0
    assert "python -m benchmarks" in done.stdout
