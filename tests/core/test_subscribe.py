"""The subscriber protocol without I/O, and a subscription's life stepped by hand.

``classify``, ``handshake``, ``covering``, ``Heartbeat`` and ``reconnect_delay`` are pure. The
life (``_Subscriber._life``) is a generator of I/O steps: here it is sent canned replies and
thrown the errors a socket would raise, so what it does is checked apart from the thread and
task twins that perform the steps.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Generator
from typing import Any

import pytest
import redis

from arketic_cache import _subscribe
from arketic_cache._core._subscribe import (
    NOTHING,
    TRACKING_CHANNEL,
    Close,
    Confirm,
    Connect,
    Heartbeat,
    Invalidation,
    Message,
    Pause,
    Pong,
    Read,
    Refused,
    Release,
    Reply,
    Send,
    Step,
    Subscribed,
    Topics,
    Write,
    classify,
    covering,
    handshake,
    reconnect_delay,
)
from arketic_cache._subscribe import SLICE, _Subscriber

NOPERM_CHANNEL = redis.exceptions.NoPermissionError(
    "this user has no permissions to access one of the channels used as arguments"
)
NOPERM_COMMAND = redis.exceptions.NoPermissionError(
    "this user has no permissions to run the 'client|tracking' command"
)
UNKNOWN_COMMAND = redis.ResponseError("unknown command 'CLIENT', with args beginning with: 'ID'")
REFUSALS = [
    pytest.param(NOPERM_CHANNEL, id="noperm-channel"),
    pytest.param(NOPERM_COMMAND, id="noperm-command"),
    pytest.param(UNKNOWN_COMMAND, id="unknown-command"),
]


def same(step: Any, expected: Any) -> bool:
    """Steps and events are named tuples: ``Connect() == Release() == ()``, so compare types."""
    return type(step) is type(expected) and step == expected


# -- classify -------------------------------------------------------------------------------------
class TestClassify:
    @pytest.mark.parametrize(
        ("frame", "event"),
        [
            # RESP3 push frames
            pytest.param(["invalidate", ["a", "b"]], Invalidation(("a", "b")), id="r3-keys"),
            pytest.param([b"invalidate", [b"a"]], Invalidation(("a",)), id="r3-bytes"),
            pytest.param(["invalidate", None], Invalidation(None), id="r3-flush"),
            pytest.param(["message", "ch", "hi"], Message("ch", "hi"), id="r3-message"),
            pytest.param(["pong", ""], Pong(), id="r3-pong"),
            # RESP2 arrays: invalidations arrive as messages on the tracking channel
            pytest.param(
                ["message", TRACKING_CHANNEL, ["a", "b"]], Invalidation(("a", "b")), id="r2-keys"
            ),
            pytest.param(
                [b"message", TRACKING_CHANNEL.encode(), [b"k"]],
                Invalidation(("k",)),
                id="r2-bytes",
            ),
            pytest.param(["message", TRACKING_CHANNEL, None], Invalidation(None), id="r2-flush"),
            pytest.param(["message", TRACKING_CHANNEL, "k"], Invalidation(("k",)), id="r2-one"),
            pytest.param([b"message", b"ch", b"hi"], Message("ch", "hi"), id="r2-message"),
            pytest.param(
                ["pmessage", "ch.*", "ch.1", "hi"], Message("ch.1", "hi", "ch.*"), id="pmessage"
            ),
            pytest.param([b"PONG", b""], Pong(), id="r2-subscribed-pong"),
            pytest.param("PONG", Pong(), id="r2-pong-str"),
            pytest.param(b"PONG", Pong(), id="r2-pong-bytes"),
        ],
    )
    def test_events(self, frame: Any, event: Any) -> None:
        assert same(classify(frame), event)

    @pytest.mark.parametrize(
        ("frame", "confirm"),
        [
            (["subscribe", "ch", 1], Confirm("subscribe", "ch", 1)),
            ([b"psubscribe", b"ch.*", 2], Confirm("psubscribe", "ch.*", 2)),
            ([b"UNSUBSCRIBE", b"ch", 0], Confirm("unsubscribe", "ch", 0)),
            (["punsubscribe", "ch.*", 3], Confirm("punsubscribe", "ch.*", 3)),
        ],
    )
    def test_confirms_carry_the_count(self, frame: Any, confirm: Confirm) -> None:
        assert same(classify(frame), confirm)

    @pytest.mark.parametrize(
        "frame",
        [
            pytest.param("OK", id="ok"),
            pytest.param(42, id="client-id"),
            pytest.param(None, id="nil"),
            pytest.param([], id="empty"),
            pytest.param([1, 2], id="no-kind"),
            pytest.param(["subscribe", "ch", "1"], id="count-not-int"),
            pytest.param(["message", "ch"], id="short-message"),
            pytest.param(["invalidate"], id="short-invalidate"),
            pytest.param(["pmessage", "p", "ch"], id="short-pmessage"),
            pytest.param("QUEUED", id="other-status"),
        ],
    )
    def test_other_replies(self, frame: Any) -> None:
        event = classify(frame)
        assert type(event) is Reply
        assert event.value is frame

    @pytest.mark.parametrize("error", [p.values[0] for p in REFUSALS])
    def test_error_replies_are_replies(self, error: Exception) -> None:
        event = classify(error)
        assert type(event) is Reply
        assert event.value is error

    def test_undecodable_key_survives(self) -> None:
        event = classify([b"invalidate", [b"k\xff"]])
        assert type(event) is Invalidation
        assert event.keys is not None
        assert event.keys[0].encode("utf-8", "surrogateescape") == b"k\xff"


# -- handshake -----------------------------------------------------------------------------------
Plan = Generator[Send, list[Any], Subscribed]
TRACKING_ON_7: tuple[str | int, ...] = ("CLIENT", "TRACKING", "ON", "REDIRECT", 7, "BCAST")
TRACKING_AB = (*TRACKING_ON_7, "PREFIX", "app:a:", "PREFIX", "app:b:")


def run_plan(plan: Plan, answers: list[list[Any]]) -> tuple[list[Send], Subscribed]:
    """Feed ``answers`` (one list per Send) and return the sends and the result."""
    sends = [next(plan)]
    for answer in answers:
        assert len(answer) == sends[-1].replies
        try:
            sends.append(plan.send(answer))
        except StopIteration as done:
            result: Subscribed = done.value
            return sends, result
    raise AssertionError(f"the plan wants more than {len(answers)} answers; last {sends[-1]}")


class TestHandshake:
    topics = Topics(
        channels=frozenset({"c2", "c1"}),
        patterns=frozenset({"p.*"}),
        tracking=frozenset({"app:b:", "app:a:", "app:a:x"}),
        fallback=frozenset({"announce"}),
    )

    def test_resp3_happy_path(self) -> None:  # the covered prefix app:a:x is left out
        sends, result = run_plan(handshake(self.topics, True), [[7], ["OK"], [1, 2], [3]])
        assert [s.args for s in sends] == [
            ("CLIENT", "ID"),
            TRACKING_AB,
            ("SUBSCRIBE", "c1", "c2"),
            ("PSUBSCRIBE", "p.*"),
        ]
        assert [s.replies for s in sends] == [1, 1, 2, 1]
        assert same(result, Subscribed(True, self.topics))

    def test_resp2_joins_the_tracking_channel(self) -> None:
        sends, result = run_plan(handshake(self.topics, False), [["7"], ["OK"], [1], [2, 3], [4]])
        assert [s.args for s in sends] == [
            ("CLIENT", "ID"),
            TRACKING_AB,
            ("SUBSCRIBE", TRACKING_CHANNEL),
            ("SUBSCRIBE", "c1", "c2"),
            ("PSUBSCRIBE", "p.*"),
        ]
        assert result.tracking is True

    def test_every_key_is_tracked_without_prefix(self) -> None:
        topics = Topics(tracking=frozenset({"", "app:"}))
        sends, result = run_plan(handshake(topics, True), [[9], ["OK"]])
        assert sends[1].args == ("CLIENT", "TRACKING", "ON", "REDIRECT", 9, "BCAST")
        assert same(result, Subscribed(True, topics))

    def test_without_tracking_the_fallback_too(self) -> None:
        topics = Topics(channels=frozenset({"c"}), fallback=frozenset({"announce"}))
        sends, result = run_plan(handshake(topics, True), [[1, 2]])
        assert [s.args for s in sends] == [("SUBSCRIBE", "announce", "c")]
        assert same(result, Subscribed(False, topics))

    @pytest.mark.parametrize("error", REFUSALS)
    def test_client_id_refused_falls_back(self, error: Exception) -> None:
        sends, result = run_plan(handshake(self.topics, True), [[error], [1, 2, 3], [4]])
        assert [s.args for s in sends] == [
            ("CLIENT", "ID"),
            ("SUBSCRIBE", "announce", "c1", "c2"),
            ("PSUBSCRIBE", "p.*"),
        ]
        assert result.tracking is False

    @pytest.mark.parametrize("resp3", [True, False])
    @pytest.mark.parametrize("error", REFUSALS)
    def test_tracking_refused_announces(self, error: Exception, resp3: bool) -> None:
        topics = Topics(tracking=frozenset({"app:"}), fallback=frozenset({"announce"}))
        sends, result = run_plan(handshake(topics, resp3), [[5], [error], [1]])
        assert sends[-1].args == ("SUBSCRIBE", "announce")
        assert len(sends) == 3
        assert same(result, Subscribed(False, topics))

    @pytest.mark.parametrize("error", REFUSALS)
    def test_resp2_tracking_channel_refused_turns_tracking_off(self, error: Exception) -> None:
        topics = Topics(tracking=frozenset({"app:"}), fallback=frozenset({"announce"}))
        sends, result = run_plan(handshake(topics, False), [[5], ["OK"], [error], ["OK"], [1]])
        assert [s.args for s in sends[2:]] == [
            ("SUBSCRIBE", TRACKING_CHANNEL),
            ("CLIENT", "TRACKING", "OFF"),
            ("SUBSCRIBE", "announce"),
        ]
        assert result.tracking is False

    @pytest.mark.parametrize("error", REFUSALS)
    def test_subscribe_refused_raises(self, error: Exception) -> None:
        topics = Topics(channels=frozenset({"a", "b"}))
        plan = handshake(topics, True)
        assert next(plan).args == ("SUBSCRIBE", "a", "b")
        with pytest.raises(Refused) as refused:
            plan.send([1, error])  # one of the two refused
        assert str(refused.value) == f"{type(error).__name__}: {error}"

    def test_fallback_refused_raises(self) -> None:
        topics = Topics(tracking=frozenset({"app:"}), fallback=frozenset({"announce"}))
        plan = handshake(topics, True)
        next(plan)
        plan.send([NOPERM_COMMAND])
        with pytest.raises(Refused, match="NoPermissionError"):
            plan.send([NOPERM_CHANNEL])

    def test_psubscribe_refused_raises(self) -> None:
        plan = handshake(Topics(patterns=frozenset({"p.*"})), True)
        assert next(plan).args == ("PSUBSCRIBE", "p.*")
        with pytest.raises(Refused):
            plan.send([NOPERM_CHANNEL])


# -- covering ------------------------------------------------------------------------------------
class TestCovering:
    @pytest.mark.parametrize(
        ("prefixes", "kept"),
        [
            ([], ()),
            (["a:"], ("a:",)),
            (["a:", "a:"], ("a:",)),
            (["a:b:", "a:"], ("a:",)),
            (["ab", "ac"], ("ab", "ac")),
            (["a", "ab", "b", "ba", "c"], ("a", "b", "c")),
            (["x:", "", "y:"], ("",)),
            (["app:users:", "app:user:"], ("app:user:", "app:users:")),  # neither covers the other
        ],
    )
    def test_fewest_prefixes(self, prefixes: list[str], kept: tuple[str, ...]) -> None:
        assert covering(prefixes) == kept

    def test_same_keys_and_no_overlap(self) -> None:
        prefixes = ["", "a", "ab", "abc", "b", "bc", "ca", "c", "d:x", "d:y", "d:"]
        for start in range(len(prefixes)):
            given = prefixes[start:]
            kept = covering(given)
            assert all(any(p.startswith(k) for k in kept) for p in given), "a key uncovered"
            assert set(kept) <= set(given), "only given prefixes, so no extra keys"
            for k in kept:
                assert not any(k != o and k.startswith(o) for o in kept), "overlapping"

    def test_accepts_any_iterable(self) -> None:
        assert covering(p for p in ("b", "a")) == ("a", "b")


# -- heartbeat -----------------------------------------------------------------------------------
class TestHeartbeat:
    def test_ping_due_after_an_idle_interval(self) -> None:
        beat = Heartbeat(interval=1.0, timeout=0.5, now=100.0)
        assert beat.due(100.0) is None
        assert beat.due(100.99) is None
        assert beat.wait(100.25) == pytest.approx(0.75)
        assert beat.due(101.0) == "ping"

    def test_any_frame_postpones_the_ping(self) -> None:
        beat = Heartbeat(interval=1.0, timeout=0.5, now=100.0)
        beat.heard(100.8)
        assert beat.due(101.5) is None
        assert beat.due(101.8) == "ping"

    def test_unanswered_ping_is_dead_at_the_timeout(self) -> None:
        beat = Heartbeat(interval=1.0, timeout=0.5, now=100.0)
        beat.sent(101.0)
        assert beat.due(101.0) is None  # sent: no second ping
        assert beat.due(101.49) is None
        assert beat.wait(101.25) == pytest.approx(0.25)
        assert beat.due(101.5) == "dead"
        assert beat.due(500.0) == "dead"

    def test_an_answer_clears_the_ping(self) -> None:
        beat = Heartbeat(interval=1.0, timeout=0.5, now=100.0)
        beat.sent(101.0)
        beat.heard(101.4)
        assert beat.ping_sent is None
        assert beat.due(101.6) is None  # would be dead without the answer
        assert beat.due(102.4) == "ping"

    def test_wait_is_never_negative(self) -> None:
        beat = Heartbeat(interval=1.0, timeout=0.5, now=100.0)
        assert beat.wait(200.0) == 0.0
        beat.sent(101.0)
        assert beat.wait(200.0) == 0.0


# -- backoff -------------------------------------------------------------------------------------
class TestReconnectDelay:
    def test_doubles_from_the_base(self) -> None:
        ceilings = [reconnect_delay(n, 0.0, base=0.1, cap=100.0) * 2 for n in range(6)]
        assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2])

    @pytest.mark.parametrize("failures", [6, 7, 63, 64, 1000, 10**9])
    def test_capped(self, failures: int) -> None:
        assert reconnect_delay(failures, 0.0, base=0.1, cap=5.0) == pytest.approx(2.5)
        assert reconnect_delay(failures, 0.999999, base=0.1, cap=5.0) < 5.0

    def test_defaults(self) -> None:
        assert reconnect_delay(0, 0.0) == pytest.approx(0.05)
        assert reconnect_delay(100, 0.0) == pytest.approx(2.5)

    @pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.75, 0.999999])
    @pytest.mark.parametrize("failures", [0, 3, 20])
    def test_jitter_picks_from_the_upper_half(self, failures: int, draw: float) -> None:
        ceiling = min(5.0, 0.1 * 2**failures)
        delay = reconnect_delay(failures, draw, base=0.1, cap=5.0)
        assert delay == pytest.approx(ceiling * (0.5 + draw / 2))
        assert ceiling / 2 <= delay < ceiling


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
        clock.now += 4.9
        life.expect(Read("c1", SLICE), NOTHING)
        step = life.step
        assert type(step) is Read  # read until the ping is due
        assert step.seconds == pytest.approx(0.1)
        clock.now += 0.1
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
