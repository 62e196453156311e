"""The pure parts of ``@cached``: call keys, envelopes, TTL replies, freshness, the flows, and
the plans of ``_cached_state.py`` stepped by hand with canned replies (no Redis, no driver)."""

from __future__ import annotations

import json
import math
import threading
import time
import types
import uuid
from collections.abc import Callable, Generator
from typing import Any, cast

import pydantic
import pytest

from arketic_cache import (
    BackendError,
    InvalidInputError,
    RedisConnection,
    SerializationError,
    StringKey,
    _cached_state,
    cached,
)
from arketic_cache._cached import _KEYS
from arketic_cache._cached_state import FAILED, LEASE_GRACE, CachedState
from arketic_cache._cached_steps import Block, Compute, Join, NewSignal, Run, Spawn, Wait
from arketic_cache._core._cache import CacheStats
from arketic_cache._core._cached import (
    KW,
    CallKeyer,
    Claim,
    Entry,
    Envelope,
    EnvelopeCodec,
    call_key,
    claim_lease,
    early_refresh_due,
    freshness,
    lease_key,
    load_entry,
    remaining_seconds,
    static_prefix,
)
from arketic_cache._core._effects import Batch, Command, Eval
from arketic_cache._invalidation import Coherence
from arketic_cache._lua import (
    RELEASE_LEASE,
    STORE_AND_ANNOUNCE,
    UNLINK_AND_ANNOUNCE,
    UNLINK_IF_EQUAL,
)
from arketic_cache._primitives import Signal


class Point(pydantic.BaseModel):
    x: int
    y: int


class ItemKey(StringKey[int]):
    template = "shop:item:{item_id}:detail"
    item_id: str


class VersionedKey(StringKey[int]):
    template = "acct:{account}:{region}"
    schema_version = 3
    account: str
    region: str


class TaggedKey(StringKey[int]):
    template = "cart:{user}:lines"
    hash_tag = "user"
    user: str


class FieldFirstKey(StringKey[int]):
    template = "{tenant}:settings"
    tenant: str


def area(width: int, height: int = 2, *, unit: str = "m") -> int:
    return width * height


# -- call keys -----------------------------------------------------------------------------------
class TestCallKey:
    def test_types_are_part_of_the_key(self) -> None:
        keys = {call_key((1,), {}), call_key((1.0,), {}), call_key((True,), {})}
        assert len(keys) == 3
        assert call_key((1, "a"), {}) == (1, "a", int, str)

    def test_keywords_are_marked_apart_from_positionals(self) -> None:
        assert call_key((1,), {}) != call_key((), {"width": 1})
        assert call_key(("width", 1), {}) != call_key((), {"width": 1})
        assert call_key((1,), {"unit": "m"}) == (1, KW, ("unit", "m"), int, str)

    def test_keyword_order_makes_another_l1_shape(self) -> None:
        # The L1 key is the call's own shape; the L2 key (CallKeyer) is what they share.
        assert call_key((), {"a": 1, "b": 2}) != call_key((), {"b": 2, "a": 1})

    def test_unhashable_arguments_give_an_unhashable_key(self) -> None:
        with pytest.raises(TypeError):
            hash(call_key(([1, 2],), {}))

    @pytest.mark.parametrize(
        "args",
        [(), (1,), ("a",), (1, 2.5), (None, b"x", True), ((1, 2),), (frozenset({1}), 3, "z")],
    )
    @pytest.mark.parametrize("skip", [0, 1])
    def test_hot_path_key_equals_the_slow_path_key(self, args: tuple[Any, ...], skip: int) -> None:
        """The key the hot wrapper inlines (``_cached._KEYS``) is ``call_key`` of the call."""
        full = ("self", *args) if skip else args
        inlined = eval(compile(_KEYS[skip], "<hot key>", "eval"), {"args": full})
        assert inlined == call_key(full[skip:], {})
        assert type(inlined) is tuple


class TestCallKeyer:
    keyer = CallKeyer(area, namespace=None, key=None, exclude=())

    def test_positional_keyword_and_default_are_one_key(self) -> None:
        keys = {
            self.keyer((3,), {}),
            self.keyer((), {"width": 3}),
            self.keyer((3, 2), {}),
            self.keyer((3,), {"height": 2, "unit": "m"}),
            self.keyer((), {"unit": "m", "height": 2, "width": 3}),
        }
        assert len(keys) == 1
        (key,) = keys
        assert key.startswith(f"cached:{__name__}.area:")
        assert self.keyer.prefix == f"cached:{__name__}.area:"

    def test_other_values_other_keys(self) -> None:
        assert self.keyer((3,), {}) != self.keyer((3,), {"unit": "cm"})
        assert self.keyer((3,), {}) != self.keyer((4,), {})

    def test_unhashable_arguments_have_an_l2_key(self) -> None:
        def total(items: list[int], where: dict[str, int]) -> int:
            return sum(items)

        keyer = CallKeyer(total, namespace="totals", key=None, exclude=())
        first = keyer(([1, 2],), {"where": {"a": 1, "b": 2}})
        assert first == keyer((), {"where": {"b": 2, "a": 1}, "items": [1, 2]})
        assert first.startswith("cached:totals:")

    def test_arguments_that_do_not_fit(self) -> None:
        with pytest.raises(InvalidInputError):
            self.keyer((1, 2, 3), {})
        with pytest.raises(InvalidInputError):
            self.keyer((), {"depth": 1})

    def test_method_self_and_excluded_are_left_out(self) -> None:
        class Shop:
            def price(self, item: int, session: object = None) -> int:
                return item

        keyer = CallKeyer(Shop.price, namespace="p", key=None, exclude=("session",))
        assert keyer.skips_first
        assert keyer((Shop(), 1), {"session": object()}) == keyer((Shop(), 1), {})

    def test_schema_key_and_prefix(self) -> None:
        def detail(item_id: str, verbose: bool = False) -> int:
            return 0

        keyer = CallKeyer(detail, namespace=None, key=ItemKey, exclude=())
        assert keyer(("42",), {"verbose": True}) == "shop:item:42:detail"
        assert keyer.prefix == "shop:item:"

    def test_key_function(self) -> None:
        keyer = CallKeyer(area, namespace=None, key=lambda width, **_: f"w:{width}", exclude=())
        assert keyer((5,), {}) == "w:5"
        assert keyer.prefix == ""


class TestStaticPrefix:
    @pytest.mark.parametrize(
        ("schema", "prefix", "fields"),
        [
            (ItemKey, "shop:item:", {"item_id": "9"}),
            (VersionedKey, "acct:", {"account": "a", "region": "eu"}),
            (TaggedKey, "cart:", {"user": "u1"}),
            (FieldFirstKey, "", {"tenant": "t"}),
        ],
    )
    def test_every_key_starts_with_it(
        self, schema: type[StringKey[int]], prefix: str, fields: dict[str, str]
    ) -> None:
        assert static_prefix(schema) == prefix
        rendered = schema(**fields).render()
        assert rendered.startswith(prefix)
        # the longest literal start: the next character comes from a field (or its hash tag)
        following = rendered[len(prefix)]
        assert following in "{" + "".join(fields.values())


# -- envelopes -----------------------------------------------------------------------------------
class TestEnvelopeCodec:
    @pytest.mark.parametrize(
        ("value_type", "value"),
        [
            (int, 5),
            (str, "é"),
            (list[Point], [Point(x=1, y=2)]),
            (dict[str, float], {"a": 0.5}),
            (Point | None, None),
        ],
    )
    def test_round_trip(self, value_type: Any, value: Any) -> None:
        codec = EnvelopeCodec(value_type, 1 << 20)
        data = codec.encode(value, 0.25)
        assert json.loads(data)["d"] == 0.25
        assert "x" not in json.loads(data), "no writer's wall clock is written"
        assert codec.decode(data) == Envelope(value, 0.25)
        assert codec.decode(data.decode()) == Envelope(value, 0.25)

    def test_old_expiry_field_is_accepted_and_ignored(self) -> None:
        codec = EnvelopeCodec(int, 1 << 20)
        for stamp in (0.0, 4102444800.0, None):
            old = json.dumps({"v": 3, "x": stamp, "d": 1.5})
            assert codec.decode(old) == Envelope(3, 1.5)

    def test_compute_time_defaults_to_zero(self) -> None:
        assert EnvelopeCodec(int, 100).decode('{"v": 1}') == Envelope(1, 0.0)

    @pytest.mark.parametrize(
        "raw", ['{"v": "nope"}', '{"d": 1.0}', "[1]", "not json", '{"v": 1, "d": "slow"}', ""]
    )
    def test_anything_else_is_a_value_error(self, raw: str) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 (pydantic's ValidationError is one)
            EnvelopeCodec(int, 100).decode(raw)

    def test_too_large(self) -> None:
        codec = EnvelopeCodec(str, 30)
        codec.encode("a" * 10, 0.0)
        with pytest.raises(SerializationError, match="over 30"):
            codec.encode("a" * 30, 0.0)

    def test_wrong_type_is_refused(self) -> None:
        with pytest.raises(SerializationError):
            EnvelopeCodec(int, 100).encode(object(), 0.0)


# -- TTL replies and freshness -------------------------------------------------------------------
class TestRemainingSeconds:
    @pytest.mark.parametrize(
        ("pttl", "seconds"),
        [(-1, math.inf), (-2, 0.0), (1500, 1.5), (1, 0.001), (0, 0.0), (None, 0.0)],
    )
    def test_replies(self, pttl: Any, seconds: float) -> None:
        assert remaining_seconds(pttl) == seconds

    def test_error_reply_is_gone(self) -> None:
        assert remaining_seconds(BackendError("WRONGTYPE")) == 0.0


class TestFreshness:
    def entry(self, remaining: float, compute: float = 0.0) -> Entry:
        return Entry("v", compute, remaining)

    @pytest.mark.parametrize(
        ("remaining", "stale_for", "verdict"),
        [
            (10.0, 0, "fresh"),
            (math.inf, 0, "fresh"),
            (0.001, 0, "fresh"),
            (0.0, 0, "miss"),
            (15.0, 10, "fresh"),
            (10.001, 10, "fresh"),
            (10.0, 10, "stale"),  # the TTL proper is over: serve, refresh in the background
            (0.001, 10, "stale"),
            (0.0, 10, "miss"),  # gone from Redis
        ],
    )
    def test_boundaries(self, remaining: float, stale_for: int, verdict: str) -> None:
        assert freshness(self.entry(remaining), stale_for, 1.0, 1.0) == verdict

    def test_early_refresh_is_a_miss(self) -> None:
        entry = self.entry(15.0, compute=10.0)  # 5 s fresh beyond a 10 s stale period
        assert freshness(entry, 10, 1.0, 0.5) == "miss"  # 6.93 >= 5
        assert freshness(entry, 10, 1.0, 0.9) == "fresh"  # 1.05 < 5
        assert freshness(entry, 10, 0.0, 0.001) == "fresh"  # XFetch off

    def test_stale_entry_is_never_an_early_refresh(self) -> None:
        assert freshness(self.entry(5.0, compute=100.0), 10, 1.0, 0.001) == "stale"


class TestEarlyRefreshDue:
    gap = -math.log(0.5)  # with compute 1 s and beta 1, the draw 0.5 refreshes this early

    def test_due_exactly_at_the_boundary(self) -> None:
        assert early_refresh_due(1.0, 1.0, self.gap, 0.5) is True
        assert early_refresh_due(1.0, 1.0, math.nextafter(self.gap, math.inf), 0.5) is False

    def test_a_smaller_draw_refreshes_earlier(self) -> None:
        assert early_refresh_due(1.0, 1.0, 3.0, math.nextafter(math.exp(-3.0), 0)) is True
        assert early_refresh_due(1.0, 1.0, 3.0, 0.06) is False

    def test_draw_one_refreshes_only_at_expiry(self) -> None:
        assert early_refresh_due(5.0, 3.0, 0.0, 1.0) is True
        assert early_refresh_due(5.0, 3.0, 1e-9, 1.0) is False

    def test_beta_scales_the_lead(self) -> None:
        assert early_refresh_due(1.0, 2.0, 2 * self.gap, 0.5) is True
        assert early_refresh_due(1.0, 2.0, math.nextafter(2 * self.gap, math.inf), 0.5) is False

    @pytest.mark.parametrize(("compute", "beta"), [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)])
    def test_off(self, compute: float, beta: float) -> None:
        assert early_refresh_due(compute, beta, 0.0, 1e-300) is False


# -- flows ---------------------------------------------------------------------------------------
def finish(flow: Generator[Any, Any, Any], reply: Any) -> Any:
    """Send the last reply; return what the flow or plan returns."""
    with pytest.raises(StopIteration) as done:
        flow.send(reply)
    return done.value.value


def envelope(value: Any, compute: float = 0.0) -> str:
    return json.dumps({"v": value, "d": compute})


class TestLoadEntry:
    codec = EnvelopeCodec(int, 1 << 20)

    def test_one_round_trip_with_the_ttl(self) -> None:
        stats = CacheStats()
        flow = load_entry("k", self.codec, stats)
        assert next(flow) == Batch(
            (
                Command(("GET", "k"), errors_as_reply=True),
                Command(("PTTL", "k"), errors_as_reply=True),
            )
        )
        assert finish(flow, [envelope(7, 0.5), 2500]) == Entry(7, 0.5, 2.5)

    def test_without_ttl(self) -> None:
        flow = load_entry("k", self.codec, CacheStats())
        next(flow)
        assert finish(flow, [envelope(7), -1]) == Entry(7, 0.0, math.inf)

    def test_missing(self) -> None:
        stats = CacheStats()
        flow = load_entry("k", self.codec, stats)
        next(flow)
        assert finish(flow, [None, -2]) is None
        assert stats.decode_errors == 0

    def test_wrong_type_is_a_miss_and_left_alone(self) -> None:
        stats = CacheStats()
        flow = load_entry("k", self.codec, stats)
        next(flow)
        assert finish(flow, [BackendError("WRONGTYPE Operation against a key"), -1]) is None
        assert stats.decode_errors == 1

    def test_corrupt_entry_is_dropped_if_unchanged(self) -> None:
        stats = CacheStats()
        flow = load_entry("k", self.codec, stats)
        next(flow)
        assert flow.send(["garbage", 100]) == Eval(UNLINK_IF_EQUAL, ("k",), ("garbage",))
        assert finish(flow, 1) is None
        assert stats.decode_errors == 1


class TestClaimLease:
    codec = EnvelopeCodec(int, 1 << 20)

    def claim(self, replies: list[Any], stats: CacheStats | None = None) -> Claim:
        flow = claim_lease("k", "tok", 3000, self.codec, stats or CacheStats())
        assert next(flow) == Batch(
            (
                Command(("SET", "k:lease", "tok", "NX", "PX", 3000)),
                Command(("PTTL", "k:lease")),
                Command(("GET", "k")),
                Command(("PTTL", "k")),
            )
        )
        result: Claim = finish(flow, replies)
        return result

    def test_taken(self) -> None:
        assert self.claim([True, 3000, None, -2]) == Claim(True, 3000, None)

    def test_held_by_another(self) -> None:
        assert self.claim([None, 1200, None, -2]) == Claim(False, 1200, None)

    def test_value_landed_meanwhile(self) -> None:
        assert self.claim([None, 800, envelope(4, 0.1), 9000]) == Claim(
            False, 800, Entry(4, 0.1, 9.0)
        )

    def test_lease_gone_between_commands(self) -> None:
        assert self.claim([None, -2, None, -2]).lease_ms == 0

    def test_corrupt_value_is_dropped(self) -> None:
        stats = CacheStats()
        flow = claim_lease("k", "tok", 3000, self.codec, stats)
        next(flow)
        assert flow.send([True, 3000, "{bad", 100]) == Eval(UNLINK_IF_EQUAL, ("k",), ("{bad",))
        assert finish(flow, 1) == Claim(True, 3000, None)
        assert stats.decode_errors == 1


# -- the plans, stepped by hand ------------------------------------------------------------------
class FakeCoherence:
    """What the plans use of ``Coherence``, recorded."""

    def __init__(self) -> None:
        self.channel = "arketic:invalidate"
        self.origin = "me"
        self.own_listeners = 0
        self.subscribed = threading.Event()
        self.subscribed.set()
        self.tracking = True
        self.expected: list[str] = []
        self.unexpected: list[str] = []
        self.watching: list[tuple[str, ...]] = []

    def ensure(self) -> None:
        pass

    def expect(self, key: str) -> bool:
        self.expected.append(key)
        return self.tracking

    def unexpect(self, key: str) -> None:
        self.unexpected.append(key)

    def watch(self, keys: tuple[str, ...], callback: Callable[[], None]) -> Callable[[], None]:
        self.watching.append(keys)
        return lambda: self.watching.remove(keys)


def double(x: int) -> int:
    return 2 * x


class Rig:
    """A decorated ``double``'s state, bound to a connection nothing ever talks to."""

    def __init__(self, **options: Any) -> None:
        self.conn = RedisConnection(url=f"memory://plans-{uuid.uuid4().hex}")
        options.setdefault("ttl", 60)
        self.fn = cached(connection=self.conn, namespace="double", **options)(double)
        self.state: CachedState = self.fn._state
        self.co = FakeCoherence()
        # bound already: bind() returns the connection and registers nothing
        self.state._bound = self.conn
        self.state.coherence = cast(Coherence, self.co)
        if self.state.l1 is not None:
            self.state.l1.restore()  # covered by the (fake) listener
        self.key = self.state.l2_key((1,), {})

    def l1_left(self) -> list[float]:
        store = self.state.l1
        assert store is not None
        return [deadline - time.monotonic() for _, deadline, _ in store.data.values()]

    def run(self, step: Any) -> Any:
        """Assert ``step`` is a never-strict Run on our connection; its flow's first effect."""
        assert type(step) is Run
        assert step.conn is self.conn
        effect = next(step.flow)
        step.flow.close()
        return effect


@pytest.fixture
def chance(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``random.random()`` inside ``_cached_state``, fixed (the XFetch draw is ``1 - it``)."""
    values = [0.0]
    monkeypatch.setattr(_cached_state, "random", types.SimpleNamespace(random=lambda: values[0]))
    return values


@pytest.mark.usefixtures("chance")
class TestLoadPlan:
    def test_l1_by_another_call_shape_yields_nothing(self) -> None:
        rig = Rig()
        rig.state.remember(rig.state.call_key((1,), {}), rig.key, 2, 30.0, rig.state.seen())
        plan = rig.state.load((), {"x": 1})
        assert finish(plan, None) == 2
        assert rig.state.l1_hits == 1

    def test_fresh_l2_hit_is_kept_for_its_remaining_ttl(self) -> None:
        rig = Rig(stale_while_revalidate=5)
        plan = rig.state.load((1,), {})
        step = next(plan)
        assert rig.run(step) == Batch(
            (
                Command(("GET", rig.key), errors_as_reply=True),
                Command(("PTTL", rig.key), errors_as_reply=True),
            )
        )
        assert type(step) is Run
        assert step.fallback is FAILED
        assert finish(plan, Entry(2, 0.0, 30.0)) == 2
        assert rig.state.stats.hits == 1
        (left,) = rig.l1_left()
        assert 24.0 < left <= 25.0  # remaining 30 s less the stale period

    def test_stale_hit_is_served_and_refreshed_once(self) -> None:
        rig = Rig(stale_while_revalidate=10)
        plan = rig.state.load((1,), {})
        next(plan)
        spawn = plan.send(Entry(5, 0.0, 4.0))
        assert type(spawn) is Spawn
        assert finish(plan, None) == 5
        assert rig.l1_left() == [], "a stale value is not kept in L1"

        again = rig.state.load((1,), {})
        next(again)
        assert finish(again, Entry(5, 0.0, 3.0)) == 5, "no second refresh"

        refresh = spawn.plan
        assert next(refresh) == Compute((1,), {})
        store = refresh.send((2, 0.01))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        finish(refresh, True)
        assert rig.state.refreshing == set()

    def test_miss_computes_stores_and_announces(self) -> None:
        rig = Rig(stale_while_revalidate=5)
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        assert join.key == rig.key
        miss = join.plan
        assert next(miss) == Compute((1,), {})
        store = miss.send((2, 0.5))
        effect = rig.run(store)
        assert type(effect) is Eval
        assert effect.script is STORE_AND_ANNOUNCE
        assert effect.keys == (rig.key,)
        data, ttl, channel, message, listeners = effect.args
        assert isinstance(data, bytes)
        assert json.loads(data) == {"v": 2, "d": 0.5}
        assert (ttl, channel, listeners) == (65, "arketic:invalidate", 0)
        assert json.loads(str(message)) == ["me", rig.key]
        assert finish(miss, True) == 2
        assert finish(plan, 2) == 2
        assert rig.state.stats.misses == 1
        assert rig.co.expected == [rig.key], "our own write's report is skipped"
        assert rig.co.unexpected == []
        assert len(rig.l1_left()) == 1

    def test_failed_store_is_counted_and_unexpected(self) -> None:
        rig = Rig()
        miss = self.miss_plan(rig)
        assert next(miss) == Compute((1,), {})
        miss.send((2, 0.0))
        assert finish(miss, False) == 2
        assert rig.state.errors == 1
        assert rig.co.unexpected == [rig.key]

    def test_failed_read_computes_without_writing(self) -> None:
        rig = Rig()
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(FAILED)
        assert type(join) is Join
        assert next(join.plan) == Compute((1,), {})
        assert finish(join.plan, (2, 0.0)) == 2, "no Run: one failure per call at most"
        assert rig.state.errors == 1

    def test_uncacheable_result_is_not_stored(self) -> None:
        rig = Rig()
        miss = self.miss_plan(rig)
        next(miss)
        assert finish(miss, (None, 0.0)) is None
        assert rig.l1_left() == []

    @pytest.mark.parametrize(("random", "verdict"), [(0.5, "miss"), (0.1, "hit")])
    def test_early_refresh_draw(self, chance: list[float], random: float, verdict: str) -> None:
        rig = Rig(early_refresh=1.0)
        chance[0] = random  # draw 1 - random: 0.5 -> 6.93 s lead, 0.9 -> 1.05 s
        plan = rig.state.load((1,), {})
        next(plan)
        entry = Entry(2, 10.0, 5.0)
        if verdict == "miss":
            assert type(plan.send(entry)) is Join
        else:
            assert finish(plan, entry) == 2

    def test_without_l1_the_flight_reads_l2_again(self) -> None:
        rig = Rig(l1=False)
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        reread = next(join.plan)
        assert rig.run(reread) == Batch(
            (
                Command(("GET", rig.key), errors_as_reply=True),
                Command(("PTTL", rig.key), errors_as_reply=True),
            )
        )
        assert finish(join.plan, Entry(9, 0.0, 30.0)) == 9, "another flight stored it"

    @staticmethod
    def miss_plan(rig: Rig) -> Generator[Any, Any, Any]:
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        return join.plan


class TestLeasePlan:
    @staticmethod
    def first_claim(rig: Rig) -> tuple[Generator[Any, Any, Any], Signal, Any]:
        """A miss with ``lock=True`` up to its first claim: the flight, its signal, the claim."""
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        miss = join.plan
        assert type(next(miss)) is NewSignal
        signal = Signal()
        return miss, signal, miss.send(signal)

    def test_waits_for_the_holder_then_takes_over(self) -> None:
        rig = Rig(lock=True, lock_ttl=3)
        miss, signal, claim = self.first_claim(rig)
        effect = rig.run(claim)
        assert type(effect) is Batch
        assert effect.commands[0].args[:2] == ("SET", lease_key(rig.key))
        assert effect.commands[0].args[3:] == ("NX", "PX", 3000)
        assert claim.fallback is None
        assert rig.co.watching == [(rig.key, lease_key(rig.key))]
        wait = miss.send(Claim(False, 500, None))
        assert wait == Wait(signal, 0.5 + LEASE_GRACE)
        assert rig.state.lease_waits == 1
        retry = miss.send(False)  # the holder died: its lease ran out
        assert type(rig.run(retry)) is Batch
        assert miss.send(Claim(True, 3000, None)) == Compute((1,), {})
        assert rig.co.watching == [], "unwatched once the lease is taken"
        store = miss.send((2, 0.0))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        release = miss.send(True)
        effect = rig.run(release)
        assert type(effect) is Eval
        assert effect.script is RELEASE_LEASE
        assert effect.keys == (lease_key(rig.key),)
        assert finish(miss, True) == 2
        assert rig.state.stats.misses == 1

    def test_gives_up_after_the_rounds(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        for _ in range(_cached_state.MAX_LEASE_ROUNDS):
            assert type(miss.send(Claim(False, 100, None))) is Wait
            step = miss.send(True)
        assert step == Compute((1,), {}), "computed here, no lease to release"
        store = miss.send((2, 0.0))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        assert finish(miss, True) == 2
        assert rig.state.lease_waits == _cached_state.MAX_LEASE_ROUNDS

    def test_value_landed_while_waiting(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        assert finish(miss, Claim(False, 700, Entry(2, 0.0, 30.0))) == 2
        assert rig.state.stats.misses == 0
        assert rig.state.stats.hits == 1
        assert len(rig.l1_left()) == 1

    def test_taken_as_the_value_landed_is_given_back(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        release = miss.send(Claim(True, 30000, Entry(2, 0.0, 30.0)))
        assert rig.run(release).script is RELEASE_LEASE
        assert finish(miss, True) == 2
        assert rig.state.stats.misses == 0

    def test_failed_claim_computes_without_a_lease(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        assert miss.send(None) == Compute((1,), {})
        store = miss.send((2, 0.0))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        assert finish(miss, True) == 2

    def test_no_listener_computes_without_a_lease(self) -> None:
        rig = Rig(lock=True)
        rig.co.subscribed.clear()
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        miss = join.plan
        block = next(miss)
        assert block == Block(rig.co.subscribed, rig.conn.settings.connect_timeout)
        assert miss.send(False) == Compute((1,), {})
        store = miss.send((2, 0.0))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        assert finish(miss, True) == 2, "no lease to release"

    def test_compute_failure_still_releases(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        assert miss.send(Claim(True, 30000, None)) == Compute((1,), {})
        release = miss.throw(ZeroDivisionError())
        assert rig.run(release).script is RELEASE_LEASE
        with pytest.raises(ZeroDivisionError):
            miss.send(True)


class TestInvalidationPlan:
    def test_drops_l1_then_l2_announced(self) -> None:
        rig = Rig()
        rig.state.remember(rig.state.call_key((1,), {}), rig.key, 2, 30.0, rig.state.seen())
        plan = rig.state.invalidation((), {"x": 1})
        step = next(plan)
        effect = rig.run(step)
        assert effect == Eval(
            UNLINK_AND_ANNOUNCE, (rig.key,), ("arketic:invalidate", f'["me","{rig.key}"]', 0)
        )
        assert rig.l1_left() == [], "L1 first"
        assert finish(plan, False) is True, "held in L1: dropped"

    def test_only_in_l2(self) -> None:
        rig = Rig()
        plan = rig.state.invalidation((1,), {})
        next(plan)
        assert finish(plan, True) is True

    def test_nowhere(self) -> None:
        rig = Rig()
        plan = rig.state.invalidation((1,), {})
        next(plan)
        assert finish(plan, False) is False


# -- the hot path ----------------------------------------------------------------------------------
class TestHotPath:
    def test_second_call_never_reaches_the_plan(self, monkeypatch: pytest.MonkeyPatch) -> None:
        computed: list[int] = []

        @cached(l2=False)
        def f(x: int, y: str = "a") -> int:
            computed.append(x)
            return x

        state = f._state
        assert f(1) == 1
        assert state.l1 is not None
        assert list(state.l1.data) == [call_key((1,), {})]

        def forbidden(*args: Any) -> Any:
            raise AssertionError("the slow path ran")

        monkeypatch.setattr(CachedState, "call_key", forbidden)
        assert f(1) == 1
        assert computed == [1]
        assert state.l1_hits == 1

    def test_method_key_leaves_self_out(self, monkeypatch: pytest.MonkeyPatch) -> None:
        class Shop:
            @cached(l2=False)
            def price(self, item: int) -> int:
                return item * 10

        assert Shop().price(3) == 30
        state = Shop.price._state
        assert state.l1 is not None
        assert list(state.l1.data) == [call_key((3,), {})]
        monkeypatch.setattr(CachedState, "call_key", lambda *a: pytest.fail("slow path"))
        assert Shop().price(3) == 30, "another instance, the same entry, the hot path"

    def test_unhashable_arguments_fall_back_to_the_l2_key(self) -> None:
        @cached(l2=False)
        def total(items: list[int]) -> int:
            return sum(items)

        assert total([1, 2]) == 3
        state = total._state
        assert state.l1 is not None
        assert list(state.l1.data) == [state.l2_key(([1, 2],), {})]
        assert total([1, 2]) == 3
        assert state.l1_hits == 1
