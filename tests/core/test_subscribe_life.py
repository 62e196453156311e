"""A subscription's life (``_Subscriber._life``) stepped by hand: it is a generator of I/O steps,
here sent canned replies and thrown the errors a socket would raise, so what it does is checked
apart from the thread and task twins that perform the steps."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest
import redis

from arketic_cache import _subscribe
from arketic_cache._core._subscribe import (
    NOTHING,
    TRACKING_CHANNEL,
    Close,
    Connect,
    Message,
    Pause,
    Read,
    Release,
    Step,
    Subscribed,
    Topics,
    Write,
)
from arketic_cache._subscribe import SLICE, _Subscriber

from .canned import NOPERM_CHANNEL, same


# -- the life of a subscription, stepped by hand --------------------------------------------------
class FakeListener:
    """Records what the subscriber reports, in order."""

    def __init__(self, topics: Topics) -> None:
        self.current = topics
        self.events: list[tuple[Any, ...]] = []

    def topics(self) -> Topics:
        return self.current

    def on_subscribed(self, result: Subscribed, gapless: bool) -> None:
        self.events.append(("subscribed", result, gapless))

    def on_lost(self, reason: str) -> None:
        self.events.append(("lost", reason))

    def on_refused(self, reason: str) -> None:
        self.events.append(("refused", reason))

    def on_invalidate(self, keys: tuple[str, ...] | None) -> None:
        self.events.append(("invalidate", keys))

    def on_message(self, message: Message) -> None:
        self.events.append(("message", message))

    def last(self) -> tuple[Any, ...]:
        return self.events[-1]

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]


def pause(step: Step | None) -> float:
    assert type(step) is Pause, step
    return step.seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class Stepper:
    """Drives a life: each call sends what the last step gave and returns the next step."""

    def __init__(self, sub: _Subscriber, stopped: Callable[[], bool]) -> None:
        self.life = sub._life(stopped)
        self.step: Step | None = next(self.life)

    def send(self, reply: Any = None) -> Step | None:
        try:
            self.step = self.life.send(reply)
        except StopIteration:
            self.step = None
        return self.step

    def throw(self, error: Exception) -> Step | None:
        try:
            self.step = self.life.throw(error)
        except StopIteration:
            self.step = None
        return self.step

    def expect(self, expected: Any, reply: Any = None) -> Step | None:
        """Assert the current step, then answer it."""
        assert same(self.step, expected), f"{self.step!r} != {expected!r}"
        return self.send(reply)

    def command(self, conn: str, args: tuple[Any, ...], *frames: Any, timeout: float) -> None:
        """A handshake command on ``conn`` and the frames that answer it."""
        self.expect(Write(conn, args))
        for frame in frames:
            self.expect(Read(conn, timeout), frame)


TRACKED = Topics(tracking=frozenset({"app:"}), fallback=frozenset({"app:announce"}))
TRACKING_ON = ("CLIENT", "TRACKING", "ON", "REDIRECT", 11, "BCAST", "PREFIX", "app:")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The life's monotonic clock, moved by hand (only inside ``_subscribe``)."""
    fake = Clock()
    monkeypatch.setattr(_subscribe, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


@pytest.fixture
def draw(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff's jitter draws, fixed (only inside ``_subscribe``)."""
    draws = [0.5]
    monkeypatch.setattr(_subscribe, "random", types.SimpleNamespace(random=lambda: draws[0]))
    return draws


class Rig:
    def __init__(self, topics: Topics = TRACKED, *, resp3: bool = True) -> None:
        self.listener = FakeListener(topics)
        self.sub = _Subscriber(lambda: None, self.listener, ping_interval=5.0, ping_timeout=1.0)
        self.sub.resp3 = resp3
        self.stopped = False
        self.life = Stepper(self.sub, lambda: self.stopped)

    def subscribe(self, conn: str, client_id: int = 11) -> None:
        """Connect and make the tracking handshake on ``conn``, on RESP3."""
        self.life.expect(Connect(), conn)
        self.life.command(conn, ("CLIENT", "ID"), client_id, timeout=1.0)
        on = (*TRACKING_ON[:4], client_id, *TRACKING_ON[5:])
        self.life.command(conn, on, "OK", timeout=1.0)


@pytest.mark.usefixtures("clock", "draw")
class TestLife:
    def test_full_subscribe_then_listen(self) -> None:
        rig = Rig(resp3=False)
        life = rig.life
        life.expect(Connect(), "c1")
        life.command("c1", ("CLIENT", "ID"), 11, timeout=1.0)
        life.command("c1", TRACKING_ON, "OK", timeout=1.0)
        life.command("c1", ("SUBSCRIBE", TRACKING_CHANNEL), [b"subscribe", b"x", 1], timeout=1.0)
        assert rig.listener.events == [("subscribed", Subscribed(True, TRACKED), False)]
        assert rig.sub.result == Subscribed(True, TRACKED)
        assert rig.sub.failures == 0
        assert same(life.step, Read("c1", SLICE))  # listening, in slices

    def test_frames_are_routed_to_the_listener(self) -> None:
        rig = Rig()
        rig.subscribe("c1")
        life = rig.life
        life.expect(Read("c1", SLICE), ["message", "app:announce", "hello"])
        life.expect(Read("c1", SLICE), ["invalidate", ["app:k"]])
        life.expect(Read("c1", SLICE), NOTHING)
        life.expect(Read("c1", SLICE), ["invalidate", None])
        assert rig.listener.events[1:] == [
            ("message", Message("app:announce", "hello")),
            ("invalidate", ("app:k",)),
            ("invalidate", None),
        ]
        assert same(life.step, Read("c1", SLICE))

    def test_invalidations_during_the_handshake_are_routed(self) -> None:
        rig = Rig()
        life = rig.life
        life.expect(Connect(), "c1")
        life.expect(Write("c1", ("CLIENT", "ID")))
        life.expect(Read("c1", 1.0), ["message", "other", "early"])  # not an answer
        life.expect(Read("c1", 1.0), 11)
        assert same(life.step, Write("c1", TRACKING_ON))
        assert rig.listener.events == [("message", Message("other", "early"))]

    def test_lost_connection_reconnects_after_a_pause(self) -> None:
        rig = Rig()
        rig.subscribe("c1")
        life = rig.life
        assert same(life.throw(redis.ConnectionError("Connection reset by peer")), Release())
        assert rig.listener.last() == ("lost", "ConnectionError: Connection reset by peer")
        assert rig.sub.result is None
        # failures was 0 (the last attempt succeeded): the shortest backoff, 0.05 s * 0.75
        assert pause(life.send()) == pytest.approx(0.0375)
        assert rig.sub.failures == 1
        assert same(life.send(), Connect())
        rig.subscribe("c2")
        assert rig.listener.kinds() == ["subscribed", "lost", "subscribed"]
        assert rig.listener.last() == ("subscribed", Subscribed(True, TRACKED), False)
        assert rig.sub.failures == 0, "a subscription resets the backoff"

    @pytest.mark.parametrize(
        "error",
        [redis.TimeoutError("Timeout reading"), OSError("broken pipe"), EOFError()],
        ids=["timeout", "oserror", "eof"],
    )
    def test_other_losses_during_the_handshake(self, error: Exception) -> None:
        rig = Rig()
        rig.life.expect(Connect(), "c1")
        rig.life.expect(Write("c1", ("CLIENT", "ID")))
        assert same(rig.life.throw(error), Release())
        assert rig.listener.kinds() == ["lost"]
        assert rig.listener.events[0][1].startswith(type(error).__name__)
        assert type(rig.life.send()) is Pause

    def test_silent_server_during_the_handshake_is_lost(self) -> None:
        rig = Rig()
        rig.life.expect(Connect(), "c1")
        rig.life.expect(Write("c1", ("CLIENT", "ID")))
        assert same(rig.life.expect(Read("c1", 1.0), NOTHING), Release())
        assert rig.listener.events == [("lost", "Frozen: no answer during the handshake")]

    def test_idle_connection_is_pinged_and_dead_without_an_answer(self, clock: Clock) -> None:
        rig = Rig()
        rig.subscribe("c1")
        life = rig.life
        clock.now += 4.97
        life.expect(Read("c1", SLICE), NOTHING)
        step = life.step
        assert type(step) is Read  # read until the ping is due
        assert step.seconds == pytest.approx(0.03)
        clock.now += 0.03
        life.send(NOTHING)
        life.expect(Write("c1", ("PING",)))
        life.expect(Read("c1", SLICE), ["pong", ""])  # answered: idle again
        clock.now += 5.0
        life.expect(Read("c1", SLICE), NOTHING)
        life.expect(Write("c1", ("PING",)))
        clock.now += 1.0
        life.expect(Read("c1", SLICE), NOTHING)  # no answer within the timeout
        assert same(life.step, Release())
        assert rig.listener.last() == ("lost", "Frozen: no answer to PING within 1.0 s")

    def test_refusal_backs_off_longer_than_a_loss(self) -> None:
        topics = Topics(channels=frozenset({"ch"}))
        refused, lost = Rig(topics), Rig(topics)
        refused_pauses: list[float] = []
        lost_pauses: list[float] = []
        for _ in range(12):
            refused.life.expect(Connect(), "c")
            refused.life.expect(Write("c", ("SUBSCRIBE", "ch")))
            refused.life.expect(Read("c", 1.0), NOPERM_CHANNEL)
            refused.life.expect(Release())
            step = refused.life.step
            assert type(step) is Pause
            refused_pauses.append(step.seconds)
            refused.life.send()

            lost.life.expect(Connect(), "c")
            lost.life.expect(Write("c", ("SUBSCRIBE", "ch")))
            lost.life.throw(redis.ConnectionError("refused"))
            lost.life.expect(Release())
            step = lost.life.step
            assert type(step) is Pause
            lost_pauses.append(step.seconds)
            lost.life.send()
        reason = f"NoPermissionError: {NOPERM_CHANNEL}"
        assert refused.listener.events == [("refused", reason)] * 12, "never on_lost"
        assert lost.listener.kinds() == ["lost"] * 12
        assert refused.sub.failures == lost.sub.failures == 12
        # The same growth from 0.05 s; a loss is capped at 2 s, a refusal at 30 s (x 0.75).
        assert refused_pauses[:5] == pytest.approx(lost_pauses[:5])
        assert lost_pauses[-1] == pytest.approx(1.5)
        assert refused_pauses[-1] == pytest.approx(22.5)
        assert refused_pauses == sorted(refused_pauses)

    def test_refused_subscribe_of_several_channels_is_one_error(self) -> None:
        rig = Rig(Topics(channels=frozenset({"a", "b"})))
        rig.life.expect(Connect(), "c")
        rig.life.expect(Write("c", ("SUBSCRIBE", "a", "b")))
        step = rig.life.expect(Read("c", 1.0), NOPERM_CHANNEL)  # all the server sends
        assert same(step, Release())
        assert rig.listener.kinds() == ["refused"]

    def test_topic_change_subscribes_anew_before_dropping_the_old(self) -> None:
        rig = Rig()
        rig.subscribe("old")
        life = rig.life
        life.expect(Read("old", SLICE), ["invalidate", ["app:1"]])
        wider = Topics(tracking=frozenset({"app:", "other:"}), fallback=TRACKED.fallback)
        rig.listener.current = wider
        rig.sub.resubscribe()
        life.expect(Read("old", SLICE), NOTHING)
        # the new connection listens first ...
        life.expect(Connect(), "new")
        life.command("new", ("CLIENT", "ID"), 12, timeout=1.0)
        on = ("CLIENT", "TRACKING", "ON", "REDIRECT", 12, "BCAST")
        life.command("new", (*on, "PREFIX", "app:", "PREFIX", "other:"), "OK", timeout=1.0)
        assert rig.listener.last() == ("subscribed", Subscribed(True, wider), True)
        # ... then the old one is drained up to a PING's answer, and closed
        life.expect(Write("old", ("PING",)))
        life.expect(Read("old", 1.0), ["invalidate", ["app:2"]])
        life.expect(Read("old", 1.0), ["pong", ""])
        life.expect(Close("old"))
        assert same(life.step, Read("new", SLICE))
        assert rig.listener.last() == ("invalidate", ("app:2",)), "drained, not dropped"
        assert rig.listener.kinds().count("lost") == 0
        assert rig.sub.result == Subscribed(True, wider)

    @pytest.mark.parametrize("how", ["lost", "silent"])
    def test_old_connection_failing_while_drained_is_just_closed(self, how: str) -> None:
        rig = Rig()
        rig.subscribe("old")
        rig.sub.resubscribe()
        life = rig.life
        life.expect(Read("old", SLICE), NOTHING)
        rig.subscribe("new", client_id=12)
        life.expect(Write("old", ("PING",)))
        if how == "lost":
            life.throw(redis.ConnectionError("gone"))
        else:
            life.expect(Read("old", 1.0), NOTHING)
        life.expect(Close("old"))
        assert same(life.step, Read("new", SLICE))
        assert rig.listener.kinds() == ["subscribed", "subscribed"]

    def test_topic_change_refused_is_a_refusal(self) -> None:
        rig = Rig()
        rig.subscribe("old")
        rig.listener.current = Topics(channels=frozenset({"forbidden"}))
        rig.sub.resubscribe()
        life = rig.life
        life.expect(Read("old", SLICE), NOTHING)
        life.expect(Connect(), "new")
        life.expect(Write("new", ("SUBSCRIBE", "forbidden")))
        life.expect(Read("new", 1.0), NOPERM_CHANNEL)
        assert same(life.step, Release())  # both connections go
        assert rig.listener.kinds() == ["subscribed", "refused"]

    def test_a_listener_bug_does_not_end_listening(self, caplog: pytest.LogCaptureFixture) -> None:
        rig = Rig()
        rig.subscribe("c1")

        def broken(message: Message) -> None:
            raise ValueError("bug")

        rig.listener.on_message = broken  # type: ignore[method-assign]
        with caplog.at_level("ERROR", logger="arketic_cache"):
            step = rig.life.expect(Read("c1", SLICE), ["message", "ch", "x"])
        assert same(step, Release())
        assert rig.listener.last() == ("lost", "ConnectionError: subscriber error")
        assert [r.getMessage() for r in caplog.records] == ["subscriber failed"]
        assert type(rig.life.send()) is Pause
        assert same(rig.life.send(), Connect())

    def test_stop_ends_the_life_without_a_pause(self) -> None:
        rig = Rig()
        rig.subscribe("c1")
        rig.stopped = True
        assert same(rig.life.send(NOTHING), Release())
        assert rig.life.send() is None
        assert rig.listener.kinds() == ["subscribed"]

    def test_stop_during_backoff_ends_the_life(self) -> None:
        rig = Rig()
        rig.life.expect(Connect(), "c1")
        rig.life.throw(redis.ConnectionError("refused"))
        assert type(rig.life.expect(Release())) is Pause
        rig.stopped = True
        assert rig.life.send() is None

    def test_stopped_before_start_does_nothing(self) -> None:
        sub = _Subscriber(lambda: None, FakeListener(TRACKED))
        with pytest.raises(StopIteration):
            next(sub._life(lambda: True))


class TestAmendInPlace:
    """Without tracking, a topic change is made on the live connection: no reconnect, no
    duplicate, and a refusal leaves what was already subscribed."""

    def listening(self, channels: set[str]) -> Rig:
        rig = Rig(Topics(channels=frozenset(channels)))
        life = rig.life
        life.expect(Connect(), "c")
        life.expect(Write("c", ("SUBSCRIBE", *sorted(channels))))
        for count, name in enumerate(sorted(channels), 1):
            life.expect(Read("c", 1.0), ["subscribe", name, count])
        return rig

    def test_new_channels_are_subscribed_before_old_ones_are_dropped(self) -> None:
        rig = self.listening({"a"})
        life = rig.life
        rig.listener.current = Topics(channels=frozenset({"b"}), patterns=frozenset({"p*"}))
        rig.sub.resubscribe()
        life.expect(Read("c", SLICE), NOTHING)
        life.expect(Write("c", ("SUBSCRIBE", "b")))
        life.expect(Write("c", ("PSUBSCRIBE", "p*")))
        life.expect(Write("c", ("UNSUBSCRIBE", "a")))
        life.expect(Read("c", 1.0), ["message", "a", "in between"])  # routed, not lost
        life.expect(Read("c", 1.0), ["subscribe", "b", 2])
        life.expect(Read("c", 1.0), ["psubscribe", "p*", 3])
        life.expect(Read("c", 1.0), ["unsubscribe", "a", 2])
        assert same(life.step, Read("c", SLICE)), "the same connection, no Connect"
        new = Topics(channels=frozenset({"b"}), patterns=frozenset({"p*"}))
        assert rig.listener.events[-2:] == [
            ("message", Message("a", "in between")),
            ("subscribed", Subscribed(False, new), True),
        ]

    def test_a_refused_addition_keeps_the_rest(self) -> None:
        rig = self.listening({"a"})
        life = rig.life
        rig.listener.current = Topics(channels=frozenset({"a", "forbidden"}))
        rig.sub.resubscribe()
        life.expect(Read("c", SLICE), NOTHING)
        life.expect(Write("c", ("SUBSCRIBE", "forbidden")))
        life.expect(Read("c", 1.0), NOPERM_CHANNEL)
        assert same(life.step, Read("c", SLICE)), "still listening on the same connection"
        kept = Subscribed(False, Topics(channels=frozenset({"a"})))
        assert rig.listener.kinds()[-2:] == ["refused", "subscribed"]
        assert rig.listener.last() == ("subscribed", kept, True)

    def test_no_answer_to_a_change_is_a_frozen_server(self) -> None:
        rig = self.listening({"a"})
        life = rig.life
        rig.listener.current = Topics(channels=frozenset({"b"}))
        rig.sub.resubscribe()
        life.expect(Read("c", SLICE), NOTHING)
        life.expect(Write("c", ("SUBSCRIBE", "b")))
        life.expect(Write("c", ("UNSUBSCRIBE", "a")))
        assert same(life.expect(Read("c", 1.0), NOTHING), Release())
        assert rig.listener.last() == ("lost", "Frozen: no answer to a subscription change")
