"""L1 coherence for ``@cached``: one listener per connection evicts L1 copies that Redis changed.

Modes, best first (``cache_info().coherence`` and ``get_info()["coherence"]`` report which):

* ``tracking``: server-assisted invalidation. The listener connection turns on
  ``CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX ...`` for the prefixes of the cached keys,
  so a write, delete, expiry, eviction or flush by *any* client (redis-cli, another service, a
  script) evicts the L1 copies in every process. RESP2 receives these as messages on
  ``__redis__:invalidate`` (which needs permission to subscribe to it), RESP3 as push frames.
* ``announce``: where tracking is unavailable (fakeredis, an ACL without CLIENT, a Redis
  Cluster, whose nodes each track only their own slots), ``@cached``'s
  own writes and invalidations are published on an announce channel by the script that makes
  them. Writes by other clients are not seen: only the L1 TTL bounds them.
* ``none``: no listener is subscribed (not yet, the server is gone or frozen, permission was
  refused). No L1 entry is then served longer than the grace bound (``coherence_grace``
  seconds, 2 by default) after coherence was lost; once the listener subscribes again every
  L1 is flushed (invalidations may have been missed meanwhile).

The listener runs on the subscription seam (``_subscribe.py``): a PING must be answered within a
deadline, so a frozen server is noticed; after ``fork()`` the child starts afresh on first use.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable

from . import _connection
from ._core._cached import parse_invalidation
from ._core._subscribe import Message, Subscribed, Topics
from ._l1 import L1Store
from ._subscribe import SubscriberThread

__all__ = ["ANNOUNCE_CHANNEL", "Coherence", "coherence", "coherence_mode", "coherence_of"]

logger = logging.getLogger("arketic_cache")

ANNOUNCE_CHANNEL = "arketic:invalidate"

_registry: weakref.WeakKeyDictionary[_connection.RedisConnection, Coherence] = (
    weakref.WeakKeyDictionary()
)
_registry_lock = threading.Lock()


def coherence(conn: _connection.RedisConnection) -> Coherence:
    """The coherence listener of ``conn`` (created, not started, on first use)."""
    found = _registry.get(conn)
    if found is None:
        with _registry_lock:
            found = _registry.get(conn)
            if found is None:
                found = _registry[conn] = Coherence(conn)
                conn.on_close(found.stop)
    return found


def coherence_of(conn: _connection.RedisConnection) -> Coherence | None:
    """The coherence listener of ``conn`` if one was created."""
    return _registry.get(conn)


def coherence_mode(conn: _connection.RedisConnection) -> str:
    """``tracking``, ``announce`` or ``none`` for ``conn`` (``none`` if nothing listens)."""
    found = _registry.get(conn)
    return found.mode if found is not None else "none"


class Coherence:
    """Keeps the L1 stores of one connection coherent (see the module docstring)."""

    def __init__(self, conn: _connection.RedisConnection) -> None:
        settings = conn.settings
        self.channel = settings.key_prefix + ANNOUNCE_CHANNEL
        self.grace = settings.coherence_grace
        self.origin = uuid.uuid4().hex
        #: On a cluster, tracking is per node and PUBSUB NUMSUB counts one node's subscribers:
        #: invalidations are always announced, and always published.
        self.cluster = conn.cluster
        self.mode = "none"
        self.subscribed = threading.Event()
        self._changed = threading.Condition()
        self.received = 0  # invalidated keys delivered
        self.flushes = 0  # whole-L1 flushes (after a gap, or a FLUSHDB)
        self._lock = threading.Lock()
        self._stores: weakref.WeakSet[L1Store] = weakref.WeakSet()
        self._prefixes: set[str] = set()
        self._watchers: dict[str, list[Callable[[], None]]] = {}
        self._observers: list[Callable[[str | None], None]] = []
        # Tracking reports our own writes too: each write we are about to make is expected
        # here, and its report is skipped (see ``expect``).
        self._expected: dict[str, int] = {}
        self._trouble: str | None = None  # why coherence is lost (logged once per streak)
        ref = weakref.ref(conn)
        self.subscriber = SubscriberThread(
            lambda: _subscriber_connection(ref),
            self,
            ping_interval=settings.listener_ping_interval,
            ping_timeout=settings.listener_ping_timeout,
            resp3=settings.protocol == 3,
        )
        self.subscriber.name = "arketic-cache-coherence"
        _alive.add(self)

    # -- what @cached calls ----------------------------------------------------------------------
    def register(self, prefix: str, store: L1Store | None) -> None:
        """Keep ``store`` (keys under ``prefix``) coherent; start the listener if needed."""
        with self._lock:
            if store is not None:
                self._stores.add(store)  # incoherent (kept at most `grace`) until covered
            known = prefix in self._prefixes
            self._prefixes.add(prefix)
        if not known:
            self.subscriber.resubscribe()  # a new prefix to track: subscribed anew, no gap
        self.ensure()

    def ensure(self) -> None:
        """Start the listener in this process if it does not run (first use, after a fork)."""
        if not self.subscriber.running:
            self.subscriber.start()

    def watch(self, keys: tuple[str, ...], callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` when any of ``keys`` changes (or on a flush); returns an unwatch."""
        with self._lock:
            for key in keys:
                self._watchers.setdefault(key, []).append(callback)

        def unwatch() -> None:
            with self._lock:
                for key in keys:
                    callbacks = self._watchers.get(key)
                    if callbacks is not None and callback in callbacks:
                        callbacks.remove(callback)
                        if not callbacks:
                            del self._watchers[key]

        return unwatch

    def observe(self, callback: Callable[[str | None], None]) -> Callable[[], None]:
        """Call ``callback(key)`` after every key evicted (``None``: all, after a flush)."""
        self._observers.append(callback)
        return lambda: self._observers.remove(callback)

    def settle(self, store: L1Store | None, timeout: float) -> bool:
        """Wait until the listener is subscribed and covers ``store``; True if it does."""
        self.ensure()
        return self.wait_until(
            lambda: self.subscribed.is_set() and (store is None or store.coherent), timeout
        )

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait up to ``timeout`` s for ``predicate()``, re-checked at every change of mode."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def expect(self, key: str) -> bool:
        """Our next write of ``key`` keeps our L1 copy: skip one tracking report of ``key``.

        Reports arrive in the server's order, one per write. Skipping one report of ``key``
        for each write of ours is safe whichever write it belonged to: had another client's
        write come first, the report of ours still follows and drops the copy (an eviction
        too many, never a stale copy kept). False when not tracking (nothing to skip).
        """
        with self._lock:
            if self.mode != "tracking":
                return False
            self._expected[key] = self._expected.get(key, 0) + 1
            return True

    def unexpect(self, key: str) -> None:
        """The write ``expect`` announced failed: its report may never come."""
        with self._lock:
            self._unexpect_locked(key)

    def _unexpect_locked(self, key: str) -> None:
        left = self._expected.get(key, 0) - 1
        if left > 0:
            self._expected[key] = left
        else:
            self._expected.pop(key, None)

    @property
    def own_listeners(self) -> int:
        """How many of the announce channel's subscribers are this connection's (0 or 1);
        -1 on a cluster, where a node cannot count them: the scripts then publish unasked."""
        if self.cluster:
            return -1
        return 1 if self.mode == "announce" else 0

    def stop(self) -> None:
        """Stop listening (the connection is closing); its L1 copies go with it, so no
        copy outlives the connection it was read through (nothing would evict it now)."""
        self.subscriber.stop()
        self._lost(None)
        with self._lock:
            stores = list(self._stores)
        for store in stores:
            store.clear()

    # -- what the subscriber reports -------------------------------------------------------------
    def topics(self) -> Topics:
        with self._lock:
            prefixes = frozenset(self._prefixes)
        if self.cluster:
            return Topics(fallback=frozenset({self.channel}))
        return Topics(tracking=prefixes, fallback=frozenset({self.channel}))

    def on_subscribed(self, result: Subscribed, gapless: bool) -> None:
        tracked = result.topics.tracking or frozenset()
        with self._lock:
            stores = list(self._stores)
            self.mode = "tracking" if result.tracking else "announce"
            if not gapless:
                self._expected.clear()  # reports of writes before the gap never come
        for store in stores:
            # After a gap every copy may be stale; after a gapless resubscription only the
            # stores whose prefix was not yet covered are.
            if not gapless or (
                not store.coherent and (not result.tracking or store.prefix in tracked)
            ):
                store.restore()
        if not gapless:
            self.flushes += 1
        self.subscribed.set()
        with self._changed:
            self._changed.notify_all()
        if self._trouble is not None:
            logger.info("L1 coherence restored (%s)", self.mode)
            self._trouble = None
        self._wake_all()

    def on_lost(self, reason: str) -> None:
        self._lost(f"invalidation listener lost Redis ({reason})")

    def on_refused(self, reason: str) -> None:
        self._lost(f"invalidations are not permitted ({reason}); check the ACL")

    def on_invalidate(self, keys: tuple[str, ...] | None) -> None:
        with self._lock:
            stores = list(self._stores)
        if keys is None:  # FLUSHDB / FLUSHALL
            for store in stores:
                store.clear()
            self.flushes += 1
            self._wake_all()
            for observer in list(self._observers):
                observer(None)
            return
        with self._lock:
            expected = self._expected
            mine = [key for key in keys if key in expected]
            for key in mine:
                self._unexpect_locked(key)
        for key in keys:
            if key not in mine:
                self._deliver(key, stores)

    def on_message(self, message: Message) -> None:
        if message.channel != self.channel:
            return
        parsed = parse_invalidation(message.data)
        if parsed is not None and parsed[0] != self.origin:  # our own L1 is current already
            with self._lock:
                stores = list(self._stores)
            self._deliver(parsed[1], stores)

    # -- internals --------------------------------------------------------------------------------
    def _deliver(self, key: str, stores: list[L1Store]) -> None:
        self.received += 1
        for store in stores:
            store.drop(key)
        with self._lock:
            callbacks = list(self._watchers.get(key, ()))
        for callback in callbacks:
            callback()
        for observer in list(self._observers):
            observer(key)

    def _wake_all(self) -> None:
        with self._lock:
            callbacks = [c for each in self._watchers.values() for c in each]
        for callback in callbacks:
            callback()

    def _lost(self, trouble: str | None) -> None:
        self.subscribed.clear()
        with self._lock:
            self.mode = "none"
            self._expected.clear()
            stores = list(self._stores)
        for store in stores:
            store.degrade()
        with self._changed:
            self._changed.notify_all()
        if trouble is not None and self._trouble is None:
            self._trouble = trouble
            logger.warning("%s; L1 entries are kept at most %s s meanwhile", trouble, self.grace)

    def _after_fork(self) -> None:
        self.origin = uuid.uuid4().hex  # the parent's own messages are not ours
        self.mode = "none"
        self.subscribed = threading.Event()
        self._changed = threading.Condition()
        self._lock = threading.Lock()
        self._watchers = {}
        self._expected = {}
        for store in list(self._stores):
            store.after_fork()


_alive: weakref.WeakSet[Coherence] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for each in list(_alive):
        each._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _subscriber_connection(ref: weakref.ref[_connection.RedisConnection]) -> object:
    conn = ref()
    if conn is None:
        raise EOFError("the connection was closed")
    return conn.subscriber_connection()
