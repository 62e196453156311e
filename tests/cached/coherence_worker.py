"""Process B of the coherence tests: decorated functions answering commands over a pipe.

Imported by ``spawn``ed interpreters (and by forked children of them). Each function reads its
result from a *backing key* outside the cached prefix, so a result tells where it came from:
when the test changes the backing value and something evicts B's L1 copy, B returns the new
value; while B serves its L1 copy, the old one.

Nothing here sleeps: waits are on conditions fed by the invalidation listener, bounded by
``DEADLINE``; the frozen-server probe calls the function until L1 stops serving.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from arketic_cache import RedisConnection, cached

#: Bound on every wait for something asynchronous (a message, a resubscription, a reply).
DEADLINE = 10.0
SYNC_NS, ASYNC_NS = "coherence-sync", "coherence-async"


def backing_key(prefix: str, name: str, x: int) -> str:
    """Where the function ``name`` reads its result for ``x`` (not a cached key)."""
    return f"{prefix}backing:{name}:{x}"


class Evictions:
    """Every key B's listener evicted (None: a flush), with the monotonic time it happened."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, float]] = []
        self.cond = threading.Condition()

    def __call__(self, key: str | None) -> None:
        with self.cond:
            self.seen.append((key, time.monotonic()))
            self.cond.notify_all()

    def wait_for(self, key: str, after: int) -> float | None:
        """The time ``key`` (or a flush) was evicted, among evictions after the first ``after``."""

        def found() -> float | None:
            for seen, at in self.seen[after:]:
                if seen is None or seen == key:
                    return at
            return None

        with self.cond:
            if not self.cond.wait_for(lambda: found() is not None, timeout=DEADLINE):
                return None
            return found()


class Worker:
    """Process B's functions and commands."""

    def __init__(self, url: str, prefix: str, protocol: int, settings: dict[str, Any]) -> None:
        self.prefix = prefix
        self.conn = RedisConnection(url=url, protocol=protocol, key_prefix=prefix, **settings)
        # The backing store: a client of its own (any URL the layer takes, sentinels too).
        self.backing = RedisConnection(url=url).sync_client
        self.computed = {"f": 0, "g": 0}
        self.offline = False  # compute without reading the backing value (server frozen)
        self.runner = asyncio.Runner()

        @cached(connection=self.conn, namespace=SYNC_NS, ttl=600)
        def f(x: int) -> int:
            return self.read("f", x)

        @cached(connection=self.conn, namespace=ASYNC_NS, ttl=600)
        async def g(x: int) -> int:
            return self.read("g", x)

        self.f, self.g = f, g
        self.evictions = Evictions()
        self.settle()

    def settle(self) -> None:
        """Bind both functions and wait until the listener covers their L1s."""
        for fn in (self.f, self.g):
            state = fn._state
            state.bind()
            assert state.coherence is not None
            assert state.coherence.settle(state.l1, DEADLINE), "listener did not subscribe"
        coherence = self.f._state.coherence
        assert coherence is not None
        coherence.observe(self.evictions)

    def read(self, name: str, x: int) -> int:
        self.computed[name] += 1
        if self.offline:
            return -1
        return int(self.backing.get(backing_key(self.prefix, name, x)) or -1)

    def call(self, name: str, x: int) -> int:
        return self.f(x) if name == "f" else self.runner.run(self.g(x))

    def l2_key(self, name: str, x: int) -> str:
        state = (self.f if name == "f" else self.g)._state
        return state.l2_key((x,), {}, state.call_key((x,), {}))

    def state(self, value: Any = None) -> dict[str, Any]:
        coherence = self.f._state.coherence
        assert coherence is not None
        return {
            "value": value,
            "pid": os.getpid(),
            "computed": dict(self.computed),
            "evictions": len(self.evictions.seen),
            "mode": coherence.mode,
            "origin": coherence.origin,
            "connections": coherence.subscriber.connections,
            "f": self.f.cache_info()._asdict(),
            "g": self.g.cache_info()._asdict(),
        }

    def l1_left(self, name: str, x: int) -> float | None:
        """Seconds B's L1 keeps the entry for ``x`` (None if it holds none)."""
        store = (self.f if name == "f" else self.g)._state.l1
        assert store is not None
        entry = store.get((x, int))
        return None if entry is None else entry[1] - time.monotonic()

    def serve_until_miss(self, name: str, x: int, since: float) -> float:
        """Call until a call is not an L1 hit; seconds from ``since`` (monotonic) until then."""
        fn = self.f if name == "f" else self.g
        deadline = since + 4 * DEADLINE
        self.offline = True
        try:
            while time.monotonic() < deadline:
                hits = fn.cache_info().l1_hits
                self.call(name, x)
                if fn.cache_info().l1_hits == hits:
                    return time.monotonic() - since
        finally:
            self.offline = False
        raise TimeoutError("L1 kept serving")

    def handle(self, command: str, arg: Any) -> Any:
        if command == "call":
            return self.state(self.call(*arg))
        if command == "invalidate":
            name, x = arg
            fn = self.f.invalidate(x) if name == "f" else self.runner.run(self.g.invalidate(x))
            return self.state(fn)
        if command == "await_eviction":  # (name, x, evictions seen before): when it happened
            name, x, after = arg
            return self.state(self.evictions.wait_for(self.l2_key(name, x), after))
        if command == "l1_left":
            return self.state(self.l1_left(*arg))
        if command == "serve_until_miss":
            return self.state(self.serve_until_miss(*arg))
        if command == "await_mode":
            coherence = self.f._state.coherence
            assert coherence is not None
            return self.state(coherence.wait_until(lambda: coherence.mode == arg, DEADLINE))
        if command == "settle":
            self.settle()
            return self.state(True)
        if command == "state":
            return self.state()
        raise ValueError(f"unknown command {command!r}")

    def close(self) -> None:
        self.runner.run(self.conn.aclose())
        self.runner.close()
        self.backing.close()


def serve(worker: Worker, pipe: Connection, spare: Connection | None) -> None:
    """Answer commands until told to stop; ``fork`` forks B, and the child answers on
    ``spare`` (the parent keeps ``pipe``)."""
    try:
        while True:
            command, arg = pipe.recv()
            if command == "stop":
                break
            if command == "fork" and spare is not None:
                pid = os.fork()
                if pid == 0:  # the child: serve on the spare pipe until stopped, then exit
                    pipe.close()
                    serve(worker, spare, None)
                    os._exit(0)
                pipe.send(("ok", worker.state(pid)))
                continue
            try:
                pipe.send(("ok", worker.handle(command, arg)))
            except Exception:
                pipe.send(("error", traceback.format_exc()))
    finally:
        worker.close()
        pipe.close()


def main(
    url: str,
    prefix: str,
    protocol: int,
    settings: dict[str, Any],
    pipe: Connection,
    spare: Connection,
) -> None:
    """Process B's entry point."""
    try:
        worker = Worker(url, prefix, protocol, settings)
    except Exception:
        pipe.send(("error", traceback.format_exc()))
        pipe.close()
        return
    pipe.send(("ok", worker.state(True)))
    serve(worker, pipe, spare)
