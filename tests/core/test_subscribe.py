"""The subscriber protocol without I/O: ``classify``, ``handshake``, ``covering``,
``Heartbeat`` and ``reconnect_delay``; a subscription's life is in ``test_subscribe_life.py``."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import redis

from arketic_cache._core._subscribe import (
    TRACKING_CHANNEL,
    Confirm,
    Heartbeat,
    Invalidation,
    Message,
    Pong,
    Refused,
    Reply,
    Send,
    Subscribed,
    Topics,
    classify,
    covering,
    handshake,
    reconnect_delay,
)

from .canned import NOPERM_CHANNEL, same

NOPERM_COMMAND = redis.exceptions.NoPermissionError(
    "this user has no permissions to run the 'client|tracking' command"
)
UNKNOWN_COMMAND = redis.ResponseError("unknown command 'CLIENT', with args beginning with: 'ID'")
REFUSALS = [
    pytest.param(NOPERM_CHANNEL, id="noperm-channel"),
    pytest.param(NOPERM_COMMAND, id="noperm-command"),
    pytest.param(UNKNOWN_COMMAND, id="unknown-command"),
]


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
