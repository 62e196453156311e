"""Channel schemas and a flavour-neutral view of pub/sub for the messaging tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from arketic_cache import Channel, PubSub, RedisConnection, SyncPubSub
from arketic_cache._pubsub import _AsyncHub, _SyncHub, async_hub, sync_hub


class Chat(BaseModel):
    user: str
    text: str


class ChatChannel(Channel[Chat]):
    template = "chat:{chat_id}"
    chat_id: str


class TenantChannel(Channel[Chat]):
    template = "tenant:{tenant}:room:{room}"
    tenant: str
    room: str


class Side:
    """A ``SyncPubSub``, or a ``PubSub`` whose calls run on the test's event loop."""

    def __init__(self, name: str, conn: RedisConnection, runner: asyncio.Runner, **kw: Any):
        self.name = name
        self.runner = runner
        self.conn = conn
        self.pubsub: Any = SyncPubSub(conn, **kw) if name == "sync" else PubSub(conn, **kw)

    def run(self, result: Any) -> Any:
        return self.runner.run(result) if asyncio.iscoroutine(result) else result

    def publish(self, channel: Channel[Any], message: BaseModel) -> int:
        receivers: int = self.run(self.pubsub.publish(channel, message))
        return receivers

    def subscribe(self, *topics: Any, **kw: Any) -> Sub:
        sub = Sub(self, self.pubsub.subscribe(*topics, **kw))
        sub.open()
        return sub

    def hub(self) -> _SyncHub | _AsyncHub:
        if self.name == "sync":
            return sync_hub(self.conn)

        async def find() -> _AsyncHub:
            return async_hub(self.conn)

        return self.runner.run(find())

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Until the hub's subscriber listens to every topic asked of it (after a reconnect)."""
        hub = self.hub()

        def listening() -> bool:
            return hub.subscriber.result is not None and hub.confirmed >= hub._wanted

        if isinstance(hub, _SyncHub):
            with hub._changes:
                assert hub._changes.wait_for(listening, timeout), "not listening again"
            return
        changes = hub._changes

        async def wait() -> None:
            async with asyncio.timeout(timeout):
                while not listening():
                    changes.clear()
                    await changes.wait()

        self.run(wait())

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.pubsub.stats()
        return stats


class Sub:
    """One subscription of either flavour."""

    def __init__(self, side: Side, subscription: Any) -> None:
        self.side = side
        self.subscription = subscription

    def open(self) -> None:
        self.side.run(self.subscription.open())

    def receive(self, timeout: float = 5.0) -> Any:
        return self.side.run(self.subscription.receive(timeout))

    def close(self) -> None:
        self.side.run(self.subscription.close())

    @property
    def pending(self) -> int:
        pending: int = self.subscription.pending
        return pending

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Until ``predicate()`` holds, woken by each delivery to this subscription (the
        event loop runs meanwhile)."""
        end = self.subscription._end
        if self.side.name == "sync":
            with end.cond:
                assert end.cond.wait_for(predicate, timeout), f"timed out waiting for {what}"
            return

        async def wait() -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                end.arrived.clear()
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(end.arrived.wait(), left)

        self.side.run(wait())

    def drain(self, timeout: float = 0.3) -> list[Any]:
        """Everything that arrives until ``timeout`` passes with nothing new."""
        items = []
        while (item := self.receive(timeout)) is not None:
            items.append(item)
        return items
