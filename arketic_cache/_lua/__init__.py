"""Lua scripts, one ``.lua`` file each, loaded once with their SHA1 computed at import."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

__all__ = [
    "HASH_UPDATE",
    "INCREMENT_WITH_TTL",
    "RATE_BUCKET",
    "RATE_LIMIT",
    "RATE_LOG",
    "RATE_REFUND",
    "RELEASE_LEASE",
    "RESTORE_KEY",
    "SESSION",
    "STORE_AND_ANNOUNCE",
    "STREAM_CLAIM",
    "UNLINK_AND_ANNOUNCE",
    "UNLINK_IF_EQUAL",
    "LuaScript",
    "load",
]


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A script's name, source and SHA1 (the EVALSHA handle)."""

    name: str
    text: str
    sha: str


def load(name: str) -> LuaScript:
    """Load ``<name>.lua`` from this package."""
    text = files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return LuaScript(name, text, hashlib.sha1(text.encode("utf-8")).hexdigest())


HASH_UPDATE = load("hash_update")
INCREMENT_WITH_TTL = load("increment_with_ttl")
RATE_BUCKET = load("rate_bucket")
RATE_LIMIT = load("rate_limit")
RATE_LOG = load("rate_log")
RATE_REFUND = load("rate_refund")
RELEASE_LEASE = load("release_lease")
RESTORE_KEY = load("restore_key")
SESSION = load("session")
STORE_AND_ANNOUNCE = load("store_and_announce")
STREAM_CLAIM = load("stream_claim")
UNLINK_AND_ANNOUNCE = load("unlink_and_announce")
UNLINK_IF_EQUAL = load("unlink_if_equal")
