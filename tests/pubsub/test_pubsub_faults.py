"""Faults a subscriber meets, on a real server of the test's own, sync and async: a restart,
a frozen server, an ACL without the channel, the server's output-buffer limit, and two OS
processes talking through a channel."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from arketic_cache import Channel, Gap, RedisConnection, SubscriptionRefused
from arketic_cache.testing import RedisServer

from .helpers import Chat, ChatChannel, Side

pytestmark = pytest.mark.redis


class AllowedChannel(Channel[Chat]):
    template = "allowed:{room}"
    room: str


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


_opened: list[RedisConnection] = []


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """The test's event loop; the connections the test made are closed on it afterwards."""
    with asyncio.Runner() as runner:
        yield runner
        while _opened:
            runner.run(_opened.pop().aclose())


def side_on(url: str, flavour: str, runner: asyncio.Runner) -> Side:
    conn = RedisConnection(url=url)
    _opened.append(conn)
    return Side(flavour, conn, runner)


def chat(text: str) -> Chat:
    return Chat(user="ada", text=text)


def test_a_restart_is_a_gap_then_one_subscription_again(
    fresh_server: RedisServer, flavour: str, runner: asyncio.Runner
) -> None:
    side = side_on(fresh_server.url, flavour, runner)
    sub = side.subscribe(ChatChannel(chat_id="c1"))
    side.publish(ChatChannel(chat_id="c1"), chat("before"))
    assert sub.receive().message.text == "before"
    fresh_server.restart()
    gap = sub.receive()
    assert type(gap) is Gap
    assert gap.missed is None
    assert gap.reason.startswith("connection lost")
    side.wait_listening()
    with redis.Redis.from_url(fresh_server.url) as admin:
        assert admin.pubsub_numsub("chat:c1") == [(b"chat:c1", 1)], "no duplicate"
    assert side.publish(ChatChannel(chat_id="c1"), chat("after")) == 1
    assert sub.receive().message.text == "after"
    # The first connection and the one that resubscribed, plus at most one attempt that met
    # the server while it was still starting (backoff, not a storm).
    assert 2 <= side.hub().subscriber.connections <= 3
    sub.close()


def test_a_frozen_server_is_a_gap_within_the_ping_deadline(
    fresh_server: RedisServer, flavour: str, runner: asyncio.Runner
) -> None:
    side = side_on(fresh_server.url, flavour, runner)  # PING every 1 s, answered within 1 s
    sub = side.subscribe(ChatChannel(chat_id="c1"))
    fresh_server.freeze()
    try:
        started = time.monotonic()
        gap = sub.receive(timeout=5)
        noticed = time.monotonic() - started
    finally:
        fresh_server.thaw()
    assert type(gap) is Gap
    assert "Frozen" in gap.reason
    # interval + deadline, one read slice and scheduling: far inside the promised 5 s
    assert noticed < 3.0
    side.wait_listening()
    side.publish(ChatChannel(chat_id="c1"), chat("thawed"))
    assert sub.receive().message.text == "thawed"
    sub.close()


@pytest.fixture
def limited_url(fresh_server: RedisServer) -> str:
    """A user who may use ``allowed:*`` channels only."""
    with redis.Redis.from_url(fresh_server.url) as admin:
        admin.acl_setuser(
            "chat", enabled=True, passwords=["+pw"], keys=["*"], channels=["allowed:*"],
            commands=["+@all"],
        )  # fmt: skip
    return f"redis://chat:pw@127.0.0.1:{fresh_server.port}/0"


def test_a_channel_the_acl_forbids_fails_at_subscribe_without_a_reconnect_storm(
    limited_url: str, flavour: str, runner: asyncio.Runner
) -> None:
    side = side_on(limited_url, flavour, runner)
    with pytest.raises(SubscriptionRefused, match="no permissions to access one of the channels"):
        side.subscribe(ChatChannel(chat_id="c1"))
    hub = side.hub()
    assert hub.subscriber.connections == 1
    assert not hub.subscriber.running, "nothing left to listen to: stopped, not retrying"


def test_a_refusal_beside_a_live_subscription_leaves_it_listening(
    limited_url: str, flavour: str, runner: asyncio.Runner
) -> None:
    side = side_on(limited_url, flavour, runner)
    allowed = side.subscribe(AllowedChannel(room="r1"))
    with pytest.raises(SubscriptionRefused, match="no permissions to access one of the channels"):
        side.subscribe(ChatChannel(chat_id="c1"))
    assert side.publish(AllowedChannel(room="r1"), chat("still")) == 1
    assert allowed.receive().message.text == "still"
    assert allowed.receive(0.2) is None, "no gap: the live subscription never broke"
    assert side.hub().subscriber.connections == 1
    allowed.close()


def test_the_output_buffer_limit_disconnect_is_a_gap(
    fresh_server: RedisServer, runner: asyncio.Runner
) -> None:
    """Only an async subscriber whose event loop is blocked can fall behind this far (a sync
    subscriber's thread drains the socket whatever the consumer does)."""
    with redis.Redis.from_url(fresh_server.url) as admin:
        admin.config_set("client-output-buffer-limit", "pubsub 256kb 0 0")  # our own server
        side = side_on(fresh_server.url, "async", runner)
        sub = side.subscribe(ChatChannel(chat_id="c1"), max_queued=100_000)
        with admin.pipeline(transaction=False) as pipe:
            for n in range(8000):  # 8 MB while the subscriber's loop does not run
                pipe.publish(
                    "chat:c1",
                    f'{{"v":1,"id":"x{n}","ts":0,"m":{{"user":"a","text":"{"x" * 1000}"}}}}',
                )
            pipe.execute()
        assert admin.pubsub_numsub("chat:c1") == [(b"chat:c1", 0)], "disconnected by Redis"
    items = sub.drain(timeout=2)
    gaps = [item for item in items if type(item) is Gap]
    assert len(gaps) == 1
    assert gaps[0].reason.startswith("connection lost")
    assert len(items) - 1 < 8000, "some messages were lost, and the gap says so"
    sub.close()


PUBLISHER = """
import sys
from arketic_cache import RedisConnection, SyncPubSub
from tests.pubsub.helpers import Chat, ChatChannel
pubsub = SyncPubSub(RedisConnection(url=sys.argv[1]))
for n in range(int(sys.argv[2])):
    assert pubsub.publish(ChatChannel(chat_id="c1"), Chat(user="child", text=str(n))) == 1
"""


def test_messages_from_another_process_arrive_all_and_in_order(
    redis_server: RedisServer, flavour: str, runner: asyncio.Runner
) -> None:
    side = side_on(redis_server.url, flavour, runner)
    sub = side.subscribe(ChatChannel(chat_id="c1"))
    count = 200
    child = subprocess.run(
        [sys.executable, "-c", PUBLISHER, redis_server.url, str(count)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    items = [sub.receive() for _ in range(count)]
    assert [(i.message.user, i.message.text) for i in items] == [
        ("child", str(n)) for n in range(count)
    ]
    assert len({i.id for i in items}) == count
    sub.close()
