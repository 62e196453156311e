"""The export/restore floor: plain redis-py, SCAN + pipelined PTTL and DUMP to JSON lines,
and pipelined RESTORE ABSTTL back; no validation, no typed values. Run as a process:
``python -m benchmarks.transfer_floor export|restore URL FILE``."""

from __future__ import annotations

import base64
import json
import sys
import time
from typing import cast

import redis


def export(url: str, path: str) -> None:
    client = redis.Redis.from_url(url)
    now = int(time.time() * 1000)
    with open(path, "w", encoding="utf-8") as out:
        cursor = 0
        while True:
            cursor, found = client.scan(cursor, count=1000)
            for_batch = cast(list[bytes], found)
            with client.pipeline(transaction=False) as pipe:
                for key in for_batch:
                    pipe.pttl(key)
                    pipe.dump(key)
                replies = pipe.execute()
            for i, key in enumerate(for_batch):
                pttl, payload = replies[2 * i], replies[2 * i + 1]
                if payload is None:
                    continue
                record = {
                    "k": base64.b64encode(key).decode(),
                    "exp": None if pttl < 0 else now + pttl,
                    "dump": base64.b64encode(payload).decode(),
                }
                out.write(json.dumps(record) + "\n")
            if cursor == 0:
                break


def restore(url: str, path: str) -> None:
    client = redis.Redis.from_url(url)
    with open(path, encoding="utf-8") as lines:
        pipe = client.pipeline(transaction=False)
        for n, line in enumerate(lines, 1):
            record = json.loads(line)
            key, payload = base64.b64decode(record["k"]), base64.b64decode(record["dump"])
            ttl = record["exp"] or 0
            pipe.execute_command("RESTORE", key, ttl, payload, "ABSTTL", "REPLACE")  # type: ignore[no-untyped-call]
            if n % 500 == 0:
                pipe.execute()
        pipe.execute()


if __name__ == "__main__":
    {"export": export, "restore": restore}[sys.argv[1]](sys.argv[2], sys.argv[3])
