"""HTTP: requests per second of a cached and a rate-limited FastAPI endpoint, under ``wrk``.

Every variant of the app (``http_apps``: without Redis, with hand-written redis.asyncio, with
ours, with fastapi-cache2, with slowapi) runs in a uvicorn process of its own (one worker, the
same uvicorn and event loop for all) on a free loopback port, all on the run's server. A batch
is one ``wrk`` run (C, one thread, ``CONNECTIONS`` keep-alive connections, ``SECONDS`` s) at
one app; its time per call is the wall time per completed request, so a ratio of 1.20x is
1/1.2 of the floor's requests per second. Rounds interleave the apps as everywhere else.

- cached endpoint: ``GET /answer?q=...``, one question, so every timed request is a hit (each
  app must have computed the answer exactly once when the run ends). Floor: the hand-written
  redis.asyncio cache; info: the app without Redis (the framework's own cost); ours:
  ``@cached`` (L1 over L2) and ``@cached(l1=False)``; peer: fastapi-cache2's ``@cache``.
- rate-limited endpoint: ``GET /limited``, 100 requests per minute per ``X-API-Key``; wrk's
  script cycles over ``API_KEYS`` keys, so every timed request is admitted and counted (a
  realistic API: many clients, each under its limit). Floor: a redis.asyncio fixed window
  (INCR + EXPIRE NX, one round trip); info: no limit; ours: ``rate_limit(100, by="api_key")``
  (exact trailing minute, headers on the response); peer: slowapi (``limits``' fixed window,
  its synchronous Redis storage).

Every app is probed before it is timed: the cached answer must be the 1 KB value, and every
limiter must deny the 101st request of a fresh key within its minute (a limiter that counted
nothing would look fast). Any non-2xx response or socket error in a timed batch fails the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, NamedTuple

from arketic_cache.testing import RedisServer, free_port, terminate

from .cache_bench import one_kb_value
from .http_apps import API_KEY_HEADER, LIMIT
from .timing import BatchRunner, Benchmark, Contender, Outcome, Role, Target

__all__ = ["CACHED_TARGET", "LIMITED_TARGET", "http_benchmarks", "http_summary"]

CACHED_TARGET = Target(1.10, "ratio", "HTTP cached endpoint, time per request vs raw redis-py")
#: The exact log's decision targets 1.25x a raw INCR (its script's work in Redis, which the
#: fixed-window floor does not do); behind the framework's own cost it must do no worse.
LIMITED_TARGET = Target(
    1.25, "ratio", "HTTP rate-limited endpoint, time per request vs a raw fixed window"
)
CACHED = "HTTP cached endpoint, 1 KB JSON (per request)"
LIMITED = "HTTP rate-limited endpoint, admitted (per request)"
CONNECTIONS = 16
SECONDS = 1
API_KEYS = 8192
QUESTION = "/answer?q=what+is+redis"
ROOT = Path(__file__).resolve().parent.parent

# The timed requests, and the summary wrk prints when a batch ends (one JSON line).
_LUA = """
local path = os.getenv("BENCH_PATH")
local keys = tonumber(os.getenv("BENCH_KEYS"))
local header = os.getenv("BENCH_HEADER")
local n = 0
request = function()
  if keys == 0 then
    return wrk.format("GET", path)
  end
  n = n + 1
  return wrk.format("GET", path, {[header] = "bench-" .. (n % keys)})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class Batch(NamedTuple):
    requests: int
    duration_us: int
    p50_us: int
    p99_us: int


class App:
    """One variant of the benchmark app in a uvicorn process of its own."""

    def __init__(self, kind: str, redis_url: str) -> None:
        self.kind = kind
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "BENCH_HTTP_APP": kind, "REDIS_URL": redis_url}
        command = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.http_apps:create"]
        options = ["--port", self.url.rsplit(":", 1)[1], "--no-access-log", "--log-level", "error"]
        self.process = subprocess.Popen(
            [*command, *options], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True
        )

    def wait_until_live(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                reason = self.process.communicate()[1].strip().splitlines()
                raise RuntimeError(f"the {self.kind} app exited: {reason[-1] if reason else '?'}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)  # polling a starting process, not a race fix
        raise RuntimeError(f"the {self.kind} app did not start within 30 s")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, decoded JSON body) of ``GET path``."""
        request = urllib.request.Request(f"{self.url}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def close(self) -> None:
        terminate(self.process)


def _wrk_runner(
    wrk: str, script: Path, app: App, path: str, keys: int, batches: list[Batch]
) -> BatchRunner:
    """A batch: one wrk run; returns ``n`` times its wall nanoseconds per completed request."""
    env = {
        **os.environ,
        "BENCH_PATH": path,
        "BENCH_KEYS": str(keys),
        "BENCH_HEADER": API_KEY_HEADER,
    }
    command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-s", str(script), app.url]

    async def run(n: int) -> int:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        lines = [line for line in out.decode().splitlines() if line.startswith("{")]
        if process.returncode != 0 or not lines:
            raise RuntimeError(f"wrk failed on the {app.kind} app: {err.decode().strip()}")
        summary = json.loads(lines[-1])
        if summary["status_errors"] or summary["socket_errors"] or not summary["requests"]:
            raise RuntimeError(f"the {app.kind} app answered {path} with errors: {summary}")
        batch = Batch(
            summary["requests"], summary["duration_us"], summary["p50_us"], summary["p99_us"]
        )
        batches.append(batch)
        return round(n * batch.duration_us * 1000 / batch.requests)

    return run


def _probe_cached(app: App, path: str) -> None:
    status, body = app.get(path)
    if status != 200 or body != one_kb_value():
        raise RuntimeError(f"the {app.kind} app's {path} answered {status}: not the value")


def _probe_limited(app: App, limited: bool) -> None:
    """Admitted with a fresh key; if ``limited``, the 101st request of a key is denied."""
    probe = {API_KEY_HEADER: f"probe-{app.kind}"}
    statuses = [app.get("/limited", probe)[0] for _ in range(LIMIT + 1 if limited else 1)]
    expected = [200] * LIMIT + [429] if limited else [200]
    if statuses != expected:
        raise RuntimeError(f"the {app.kind} app's limit answered {statuses}, not {expected}")


def _check_computed(apps: Sequence[App], cached_paths: int) -> None:
    """Every cached answer was computed once per route: each timed request was a hit."""
    for app in apps:
        status, body = app.get("/computed")
        if status != 200 or body["computed"] > cached_paths:
            raise RuntimeError(f"the {app.kind} app computed its answer {body}: misses timed")


class _Row(NamedTuple):
    benchmark: str
    name: str
    kind: str
    path: str
    role: Role


ROWS = (
    _Row(CACHED, "hand-written redis.asyncio GET + json.loads (floor)", "raw", QUESTION, "floor"),
    _Row(CACHED, "no cache, no Redis (the framework alone)", "bare", QUESTION, "info"),
    _Row(CACHED, "`@cached` (L1 over L2: hits served in process)", "arketic", QUESTION, "checked"),
    _Row(
        CACHED,
        "`@cached(l1=False)` (every hit from Redis)",
        "arketic",
        "/answer-l2?q=what+is+redis",
        "checked",
    ),
    _Row(CACHED, "fastapi-cache2 `@cache`", "fastapi-cache2", QUESTION, "peer"),
    _Row(
        LIMITED, "redis.asyncio INCR + EXPIRE NX fixed window (floor)", "raw", "/limited", "floor"
    ),
    _Row(LIMITED, "no limit", "bare", "/limited", "info"),
    _Row(LIMITED, '`Depends(rate_limit(100, by="api_key"))`', "arketic", "/limited", "checked"),
    _Row(LIMITED, 'slowapi `@limiter.limit("100/minute")`', "slowapi", "/limited", "peer"),
)


async def http_benchmarks(
    server: RedisServer, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str], dict[str, list[Batch]]]:
    """Start and probe every app; return the benchmarks, notes and each row's wrk batches."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return (
            [],
            ["HTTP rows skipped: wrk is not installed (`make bench` installs it as root)"],
            {},
        )
    directory = Path(tempfile.mkdtemp(prefix="arketic-http-bench-"))
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    script = directory / "bench.lua"
    script.write_text(_LUA, encoding="utf-8")
    notes: list[str] = []
    apps: dict[str, App] = {}
    for kind in dict.fromkeys(row.kind for row in ROWS):
        app = App(kind, server.url)
        stack.callback(app.close)
        apps[kind] = app
    for kind, app in list(apps.items()):
        try:
            app.wait_until_live()
        except RuntimeError as exc:
            if kind in ("fastapi-cache2", "slowapi"):  # a missing or broken peer: a note
                notes.append(f"{kind}: {exc}; its row skipped (pip install -e '.[bench]')")
                del apps[kind]
                continue
            raise
    contenders: dict[str, list[Contender]] = {CACHED: [], LIMITED: []}
    batches: dict[str, list[Batch]] = {}
    for row in ROWS:
        serving = apps.get(row.kind)
        if serving is None:
            continue
        if row.benchmark == CACHED:
            _probe_cached(serving, row.path)
        else:
            _probe_limited(serving, limited=row.kind != "bare")
        keys = API_KEYS if row.benchmark == LIMITED else 0
        kept = batches.setdefault(f"{row.benchmark} / {row.name}", [])
        runner = _wrk_runner(wrk, script, serving, row.path, keys, kept)
        contenders[row.benchmark].append(Contender(row.name, runner, row.role))
    caching = [app for kind, app in apps.items() if kind in ("raw", "arketic", "fastapi-cache2")]
    stack.callback(_check_computed, caching, 2)
    notes.insert(
        0,
        f"HTTP: each app in a uvicorn process of its own (one worker, asyncio loop, h11), "
        f"driven by wrk (1 thread, {CONNECTIONS} keep-alive connections, {SECONDS} s per "
        f"batch); rate-limited requests cycle over {API_KEYS} API keys, each under its limit "
        f"of {LIMIT} per minute; the machine's cores are shared by wrk, the app and Redis",
    )
    targets = {CACHED: CACHED_TARGET, LIMITED: LIMITED_TARGET}
    benchmarks = [
        Benchmark(name, 1, rows, targets[name]) for name, rows in contenders.items() if rows
    ]
    return benchmarks, notes, batches


def http_summary(outcomes: Sequence[Outcome], batches: dict[str, list[Batch]]) -> list[str]:
    """After timing: requests per second and latency of every HTTP row."""
    notes = []
    for o in outcomes:
        kept = batches.get(f"{o.benchmark.name} / {o.contender.name}")
        if not kept:
            continue
        timed = kept[1:]  # the warm-up batch is not counted
        rates = sorted(b.requests * 1e6 / b.duration_us for b in timed)
        p50 = sorted(b.p50_us for b in timed)[len(timed) // 2] / 1000
        p99 = sorted(b.p99_us for b in timed)[len(timed) // 2] / 1000
        notes.append(
            f"{o.benchmark.name} / {o.contender.name}: {rates[len(rates) // 2]:,.0f} req/s "
            f"(median of {len(timed)} batches), latency p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        )
    return notes
