"""What the @cached behaviour tests share: schemas, the flavoured decorator, entry inspectors.

Most tests run on {memory, redis} x {sync, async} through the ``flavor`` fixture: the same
function body is decorated as a sync function, or as a coroutine function called through a
``Bridge``. Entries are inspected behind the library's back with the ``raw`` client, and hand-
written envelopes stand in for the passage of time: nothing sleeps.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

import pydantic
import redis

from arketic_cache import TTL, StringKey, cached

from ..helpers import Bridge, Flavor


class Answer(pydantic.BaseModel):
    text: str
    score: float


class Query(pydantic.BaseModel):
    terms: list[str]
    page: int = 1


class ItemKey(StringKey[int]):
    template = "item:{item_id}"
    item_id: str


class SearchKey(StringKey[int]):
    template = "search:{term}"
    ttl = TTL.API_RESPONSE
    term: str


def settle(fn: Any) -> None:
    """Bind a decorated function and wait until its invalidation listener covers its L1.

    On subscribing, the listener flushes the L1 (invalidations published before it listened
    may be missing). Waiting for that before a scenario starts keeps it from wiping an L1
    entry at some random point of the test.
    """
    state = fn._state
    state.bind()
    assert state.coherence.settle(state.l1, 10), "the listener did not cover the L1"


def make(flavor: Flavor, body: Callable[..., Any], *, ready: bool = True, **options: Any) -> Any:
    """``body`` decorated in the test's flavour (a coroutine function behind a Bridge if async).

    The async face keeps the body's name, signature and annotations (``functools.wraps``), so
    its keys and codec are exactly those of an ``async def`` with the same signature. With
    ``ready``, the connection's listener is subscribed first (see ``settle``).
    """
    options.setdefault("connection", flavor.connection)
    if flavor.name == "sync":
        fn = cached(**options)(body)
    else:

        @functools.wraps(body)
        async def face(*args: Any, **kwargs: Any) -> Any:
            return body(*args, **kwargs)

        fn = cached(**options)(face)
    if ready and options.get("l2", True):
        settle(fn)
    return fn if flavor.name == "sync" else Bridge(fn, flavor.runner)


def bridged(flavor: Flavor, target: Any) -> Any:
    """``target`` itself when sync; behind a Bridge when its calls return coroutines."""
    return target if flavor.name == "sync" else Bridge(target, flavor.runner)


def envelope(value: Any, expires_in: float, compute_seconds: float = 0.0) -> str:
    """A stored entry as ``@cached`` writes it, expiring ``expires_in`` s from now."""
    return json.dumps({"v": value, "x": time.time() + expires_in, "d": compute_seconds})


def stored_value(raw: redis.Redis, key: str) -> Any:
    """The value held in the envelope at ``key``."""
    data = raw.get(key)
    assert isinstance(data, str)
    return json.loads(data)["v"]


def l1_deadlines(fn: Any) -> list[float]:
    """Seconds left (monotonic) for each entry in the decorated function's L1."""
    store = fn._state.l1
    with store.lock:
        return [deadline - time.monotonic() for _, deadline, _ in store.data.values()]


# -- arguments and keys -------------------------------------------------------------------------


def identity(x: int) -> int:
    return x
