"""Data of all six types for the command-line tests, and a look at what a server holds."""

from __future__ import annotations

from typing import Any

import redis

from arketic_cache._connection import bytes_client
from arketic_cache._settings import RedisSettings

from ..helpers import raw_client

#: TTLs in seconds by key (None: no TTL); every type, binary parts, infinities, stream ids.
TTLS: dict[bytes, int | None] = {
    b"user:1:profile": 600,
    b"bin:\xff\x00": 300,
    b"user:1:preferences": 900,
    b"chat:1:messages": 1200,
    b"chat:1:participants": 1500,
    b"session:user:1": 1800,
    b"events:1": None,
    b"events:2": 900,
}


def client(url: str) -> redis.Redis:
    """A bytes client of ``url`` (redis-py's cluster client for a cluster)."""
    if url.startswith("redis+cluster://"):
        return raw_client(url)
    return bytes_client(RedisSettings.create(url=url))


def populate(url: str) -> None:
    """Write the fixture keys (each type once) with their TTLs."""
    with client(url) as r:
        r.set(b"user:1:profile", b'{"name": "Ada"}')
        r.set(b"bin:\xff\x00", b"\x00\x01\xfe\xff")
        r.hset(b"user:1:preferences", mapping={b"theme": b'{"dark":true}', b"\xfe": b"\xff"})
        r.rpush(b"chat:1:messages", b"first", b"second", b"first")
        r.sadd(b"chat:1:participants", b"ada", b"grace", b"\x80")
        r.zadd(
            b"session:user:1", {b"a": 1.1, b"b": float("inf"), b"c": float("-inf"), b"d": 1e-300}
        )
        r.xadd(b"events:1", {b"kind": b"login"}, id=b"1700000000000-0")
        r.xadd(b"events:1", {b"kind": b"\xffout", b"at": b"2"}, id=b"1700000000000-7")
        r.xgroup_create(b"events:1", b"mailer", id=b"1700000000000-0")
        r.xgroup_create(b"events:1", b"\xffaudit", id=b"0")
        r.xgroup_create(b"events:2", b"idle", id=b"$", mkstream=True)  # empty, with a group
        for key, ttl in TTLS.items():
            if ttl is not None:
                r.expire(key, ttl)


def snapshot(url: str) -> dict[bytes, tuple[str, Any, int]]:
    """Every key's type, value (comparable) and TTL in seconds (-1: none)."""
    found: dict[bytes, tuple[str, Any, int]] = {}
    with client(url) as r:
        for key in r.scan_iter(count=1000):
            kind = r.type(key).decode()
            value: Any
            if kind == "string":
                value = r.get(key)
            elif kind == "hash":
                value = sorted(r.hgetall(key).items())
            elif kind == "list":
                value = r.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(r.smembers(key))
            elif kind == "zset":
                value = r.zrange(key, 0, -1, withscores=True)
            else:
                groups = sorted((g["name"], g["last-delivered-id"]) for g in r.xinfo_groups(key))
                value = ([(i, sorted(f.items())) for i, f in r.xrange(key)], groups)
            found[key] = (kind, value, r.ttl(key))
    return found


def same_within_a_second(a: dict[bytes, Any], b: dict[bytes, Any]) -> bool:
    """The same keys, types and values, and TTLs at most a second apart."""
    if a.keys() != b.keys():
        return False
    for key in a:
        (kind_a, value_a, ttl_a), (kind_b, value_b, ttl_b) = a[key], b[key]
        if kind_a != kind_b or value_a != value_b:
            return False
        if (ttl_a < 0) != (ttl_b < 0) or abs(ttl_a - ttl_b) > 1:
            return False
    return True
