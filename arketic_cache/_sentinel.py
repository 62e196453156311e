"""Behind sentinels: clients of the primary they name, and a watcher of their announcements
that makes the drivers leave a demoted primary at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from ._drive import BackendState
    from ._settings import RedisSettings

__all__ = ["ANNOUNCEMENT_TRUSTED_FOR", "SwitchWatcher", "sentinel_client"]

logger = logging.getLogger("arketic_cache")


def sentinel_client(
    settings: RedisSettings,
    options: dict[str, Any],
    flavour: Literal["sync", "async"],
    watcher: SwitchWatcher | None = None,
) -> Any:
    """A client of the primary the sentinels name, re-resolved on every new connection (the
    pool's connections ask the sentinels, in order, when they connect)."""
    assert settings.sentinel is not None
    sentinels, service, db = settings.sentinel
    asking: dict[str, Any] = {
        key: options[key]
        for key in ("socket_timeout", "socket_connect_timeout", "protocol")
        if key in options
    }
    asking["retry"] = Retry(NoBackoff(), 0)  # one try per sentinel: the next is the retry
    if settings.sentinel_password is not None:
        asking["password"] = settings.sentinel_password.get_secret_value()
    if settings.scheme == "rediss+sentinel":
        options = {**options, "ssl": True}
    kind = _sentinels(flavour, _discovery(watcher, sentinels, asking))
    # The manager's own sentinel clients are never used (``discover`` asks on its own), so
    # they get no sync Retry, which an asyncio client would warn about.
    unused = {key: value for key, value in asking.items() if key != "retry"}
    manager = kind(sentinels, sentinel_kwargs=unused, min_other_sentinels=0)
    redis_class = redis.Redis if flavour == "sync" else redis.asyncio.Redis
    return manager.master_for(service, redis_class=redis_class, db=db, **options)


#: How long an announced primary is preferred to asking the sentinels (seconds).
ANNOUNCEMENT_TRUSTED_FOR = 60.0


class SwitchWatcher:
    """Follows every sentinel's announcements, each in a daemon thread: when the service's
    primary changes (the leader's ``+promoted-slave``, every sentinel's ``+switch-master``)
    it notes the new address, which new connections then use, and bumps ``state.epoch`` so
    the drivers drop every connection to the old primary at once. A demoted primary stays
    writable for a while after the switch, and what is written there is lost."""

    def __init__(self, settings: RedisSettings, state: BackendState) -> None:
        assert settings.sentinel is not None
        self.sentinels, self.service, _ = settings.sentinel
        secret = settings.sentinel_password
        self.password = None if secret is None else secret.get_secret_value()
        self.timeout = settings.connect_timeout
        self.state = state
        self.primary: tuple[str, int] | None = None
        self.announced_at = -math.inf
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        for host, port in self.sentinels:
            threading.Thread(
                target=self._run, args=(host, port), name="arketic-sentinel", daemon=True
            ).start()

    def stop(self) -> None:
        self.stopped.set()

    def announced(self) -> tuple[str, int] | None:
        """The primary a sentinel announced in the last minute (while sentinels may still
        disagree); None otherwise, when asking them is right."""
        if time.monotonic() - self.announced_at > ANNOUNCEMENT_TRUSTED_FOR:
            return None
        return self.primary

    def _run(self, host: str, port: int) -> None:
        while not self.stopped.is_set():
            # Away, or it said something unexpected: again shortly.
            with contextlib.suppress(redis.RedisError, OSError, ValueError):
                self._follow(host, port)
            self.stopped.wait(0.5)

    def _follow(self, host: str, port: int) -> None:
        client = redis.Redis(
            host=host,
            port=port,
            password=self.password,
            socket_connect_timeout=self.timeout,
            socket_timeout=2.0,
        )
        with client, client.pubsub(ignore_subscribe_messages=True) as pubsub:
            pubsub.subscribe("+switch-master", "+promoted-slave")
            if self.primary is None:  # the first look; later ones may be a sentinel's stale view
                self.moved(client.sentinel_get_master_addr_by_name(self.service), False)
            while not self.stopped.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._announced(message["channel"], message["data"].decode().split())

    def _announced(self, channel: bytes, words: list[str]) -> None:
        if channel == b"+switch-master" and words[0] == self.service:
            self.moved((words[3], words[4]))  # name old-ip old-port new-ip new-port
        elif channel == b"+promoted-slave" and words[5:6] == [self.service]:
            self.moved((words[2], words[3]))  # slave name ip port @ master-name ip port

    def moved(self, primary: Any, announced: bool = True) -> None:
        """Note the primary's address; a change (not the first look) bumps the epoch."""
        address = _address(primary)
        if address is None:
            return
        with self.lock:
            old, self.primary = self.primary, address
            if announced:
                self.announced_at = time.monotonic()
            if old is None or old == address:
                return
            self.state.epoch += 1
        logger.warning(
            "sentinel: %s's primary moved from %s:%s to %s:%s; reconnecting",
            self.service,
            *old,
            *address,
        )


def _address(reply: Any) -> tuple[str, int] | None:
    if not reply:
        return None
    host = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    return host, int(reply[1])


def _discovery(
    watcher: SwitchWatcher | None, addresses: list[tuple[str, int]], asking: dict[str, Any]
) -> Callable[[str], tuple[str, int]]:
    """Master discovery that prefers the address the watcher heard announced (a sentinel
    asked right after a switch may not know of it yet), else asks each sentinel in turn on a
    connection of its own, closed after: it runs only when a connection is made."""
    from redis.sentinel import MasterNotFoundError

    def discover(service: str) -> tuple[str, int]:
        known = None if watcher is None else watcher.announced()
        if known is not None:
            return known
        for host, port in addresses:
            try:
                with redis.Redis(host=host, port=port, **asking) as sentinel:
                    found = _address(sentinel.sentinel_get_master_addr_by_name(service))
            except (redis.RedisError, OSError):
                continue
            if found is not None:
                return found
        raise MasterNotFoundError(f"no sentinel names a primary for {service!r}")

    return discover


def _sentinels(flavour: Literal["sync", "async"], discover: Callable[[str], Any]) -> Any:
    """A redis-py ``Sentinel`` class that finds the primary with ``discover``; the asyncio
    one runs it in a worker thread (a kept sentinel client would belong to one event loop)."""
    if flavour == "sync":
        from redis.sentinel import Sentinel

        class Watched(Sentinel):
            def discover_master(self, service_name: str) -> Any:
                return discover(service_name)

        return Watched

    from redis.asyncio.sentinel import Sentinel as AsyncSentinel

    class AsyncWatched(AsyncSentinel):
        async def discover_master(self, service_name: str) -> Any:
            return await asyncio.to_thread(discover, service_name)

    return AsyncWatched
