"""Cross-process L1 coherence: one invalidation channel per connection.

Every write or invalidation that ``@cached`` makes in Redis is published on the channel by the
same script that changes the key (unless no other process subscribes). A daemon thread per
connection listens and drops the key from every L1 in the process (messages from its own
connection are skipped: that L1 is already current). If the listener loses Redis, messages may
have been missed, so every L1 is flushed, and flushed again once the listener is subscribed
anew.

This works on any Redis (7.0 included), with RESP2 and RESP3 alike, and on fakeredis; it does
not need CLIENT TRACKING.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._core._memo import parse_invalidation
from ._drive import REDIS_ERRORS

if TYPE_CHECKING:
    from ._connection import RedisConnection
    from ._l1 import L1Store

__all__ = ["InvalidationBus"]

logger = logging.getLogger("arketic_cache")

CHANNEL = "arketic:invalidate"


class InvalidationBus:
    """Publish-side naming and the listener thread for one connection."""

    def __init__(self, connection: RedisConnection) -> None:
        self._connection = weakref.ref(connection)
        self.origin = uuid.uuid4().hex
        self.channel = connection.settings.key_prefix + CHANNEL
        self._stores: weakref.WeakSet[L1Store] = weakref.WeakSet()
        self._watchers: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.subscribed = threading.Event()
        self.received = 0
        self.flushes = 0

    @property
    def own_listeners(self) -> int:
        """How many of the channel's subscribers are this connection's (0 or 1)."""
        return 1 if self.subscribed.is_set() else 0

    def register(self, store: L1Store) -> None:
        """Keep ``store`` coherent; starts the listener on first use."""
        self._stores.add(store)
        self.start()

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(key)`` for every key announced (from any process); returns an unwatch."""
        with self._lock:
            self._watchers.append(callback)

        def unwatch() -> None:
            with self._lock:
                if callback in self._watchers:
                    self._watchers.remove(callback)

        self.start()
        return unwatch

    def start(self) -> None:
        """Start the listener thread if it is not running."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._listen, name="arketic-cache-invalidation", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Stop the listener and wait for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        self.subscribed.clear()

    def flush(self) -> None:
        """Drop every L1 entry of this connection (invalidations may have been missed)."""
        self.flushes += 1
        for store in list(self._stores):
            store.clear()

    def _deliver(self, key: str) -> None:
        self.received += 1
        for store in list(self._stores):
            store.drop(key)
        with self._lock:
            watchers = list(self._watchers)
        for callback in watchers:
            callback(key)

    def _listen(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            conn = self._connection()
            if conn is None:
                return
            client = conn.new_listener_client()
            del conn
            pubsub: Any = None
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self.channel)
                self.flush()  # anything published before we listened may be missing
                self.subscribed.set()
                delay = 0.05
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is None or message.get("type") != "message":
                        continue
                    parsed = parse_invalidation(message["data"])
                    if parsed is not None and parsed[0] != self.origin:
                        self._deliver(parsed[1])
            except REDIS_ERRORS as exc:
                if self.subscribed.is_set():
                    # Invalidations may be missed from now on: drop what L1 holds, once. While
                    # Redis stays away L1 keeps serving what is computed meanwhile; it is
                    # flushed again when the listener is back.
                    logger.warning(
                        "invalidation listener lost Redis (%s); L1 flushed", type(exc).__name__
                    )
                    self.subscribed.clear()
                    self.flush()
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(*REDIS_ERRORS):
                        pubsub.close()
                client.close()
                client.connection_pool.disconnect()
