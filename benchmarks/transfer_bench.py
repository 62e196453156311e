"""Export and restore of a namespace through the command line, against the redis-py floor.

Not interleaved like the other rows (a run is seconds long): each contender runs as a
process of its own, ``ROUNDS`` times, on the same keys; reported are the median keys per
second and the process' peak memory (``ru_maxrss`` of that child alone), at ``SIZES`` keys,
so a memory that stays flat as the key count grows is visible (``VmHWM``, see
``benchmarks.peak``). The keys: 70 % 100-byte
strings, then hashes of 5 fields, lists and sets of 5 items and sorted sets of 5 members, in
equal shares, all with a TTL. Floor (``transfer_floor``): SCAN + pipelined PTTL and DUMP to
JSON lines, pipelined RESTORE ABSTTL back. Ours: ``arketic-cache export`` with ``--dump``
(the same payloads) and without (typed values), then ``restore`` (validates the whole file
first, then writes each key atomically by script or RESTORE). Every restore must give back
the key count exported, or the run fails.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from arketic_cache.testing import RedisServer

__all__ = ["transfer_notes"]

SIZES = (10_000, 100_000)
ROUNDS = 3
ROOT = Path(__file__).resolve().parent.parent


def _populate(url: str, count: int) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()  # the run's own throwaway server
    with client.pipeline(transaction=False) as pipe:
        for n in range(count):
            key, share = f"bench:transfer:{n}", n % 10
            if share < 7:
                pipe.set(key, "x" * 100, ex=3600)
            elif share == 7:
                pipe.hset(key, mapping={f"f{i}": f"value-{i}" for i in range(5)})
            elif share == 8:
                pipe.rpush(key, *[f"item-{i}" for i in range(5)])
            else:
                pipe.zadd(key, {f"m{i}": i * 1.5 for i in range(5)})
            if share >= 7:
                pipe.expire(key, 3600)
            if n % 1000 == 999:
                pipe.execute()
        pipe.execute()
    client.close()


def _timed(module: list[str], directory: str) -> tuple[float, int]:
    """(seconds, peak resident KiB) of ``python -m MODULE ARGS`` run by ``benchmarks.peak``;
    it must succeed."""
    peak = Path(directory, "peak")
    command = [sys.executable, "-m", "benchmarks.peak", str(peak), *module]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(module[:2])} failed: {done.stderr.decode()[-500:]}")
    return elapsed, int(peak.read_text(encoding="ascii"))


def transfer_notes(server: RedisServer) -> list[str]:
    """The export/restore table, as note lines."""
    rows = [
        "export and restore through the CLI (keys per second, median of "
        f"{ROUNDS} runs; peak memory of the process):",
        "",
        "| keys | operation | contender | keys/s | vs floor | peak RSS MiB |",
        "| ---: | --- | --- | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory(prefix="arketic-transfer-") as directory:
        for count in SIZES:
            _populate(server.url, count)
            target = server.url.rsplit("/", 1)[0] + "/1"
            files = {
                name: Path(directory, f"{name}-{count}.jsonl")
                for name in ("floor", "dump", "typed")
            }
            floor, dump, typed = (str(files[n]) for n in ("floor", "dump", "typed"))
            source = ["--url", server.url]
            exports = {
                "redis-py SCAN + PTTL + DUMP pipeline (floor)":
                    ["benchmarks.transfer_floor", "export", server.url, floor],
                "`arketic-cache export --dump`":
                    ["arketic_cache", "export", "*", "--dump", "-o", dump, *source],
                "`arketic-cache export` (typed values)":
                    ["arketic_cache", "export", "*", "-o", typed, *source],
            }  # fmt: skip
            restores = {
                "redis-py RESTORE ABSTTL pipeline (floor)":
                    ["benchmarks.transfer_floor", "restore", target, floor],
                "`arketic-cache restore` of the --dump file":
                    ["arketic_cache", "restore", dump, "--url", target],
                "`arketic-cache restore` (typed values)":
                    ["arketic_cache", "restore", typed, "--url", target],
            }  # fmt: skip
            for operation, contenders in (("export", exports), ("restore", restores)):
                floor_rate = None
                for name, command in contenders.items():
                    times, peaks = [], []
                    for _ in range(ROUNDS):
                        if operation == "restore":
                            redis.Redis.from_url(target).flushdb()  # db 1 of the run's server
                        seconds, peak = _timed(command, directory)
                        times.append(seconds)
                        peaks.append(peak)
                        if operation == "restore":
                            restored = redis.Redis.from_url(target).dbsize()
                            if restored != count:
                                raise RuntimeError(f"{name}: {restored} of {count} keys restored")
                    rate = count / statistics.median(times)
                    floor_rate = floor_rate or rate
                    rows.append(
                        f"| {count:,} | {operation} | {name} | {rate:,.0f} | "
                        f"{floor_rate / rate:.2f}x | {max(peaks) / 1024:.0f} |"
                    )
    return rows
