"""The pure parts of ``@cached``: call keys, envelopes, TTL replies, freshness and the flows,
stepped with canned replies (no Redis, no driver); the plans are in ``test_cached_plans.py``."""

from __future__ import annotations

import json
import math
from typing import Any

import pydantic
import pytest

from arketic_cache import (
    BackendError,
    InvalidInputError,
    SerializationError,
    StringKey,
)
from arketic_cache._cached import _KEYS
from arketic_cache._codec import Envelope, EnvelopeCodec
from arketic_cache._core._cache import CacheStats
from arketic_cache._core._cached import (
    KW,
    CallKeyer,
    Claim,
    Entry,
    call_key,
    claim_lease,
    early_refresh_due,
    freshness,
    load_entry,
    remaining_seconds,
    static_prefix,
)
from arketic_cache._core._effects import Batch, Command, Eval
from arketic_cache._lua import (
    UNLINK_IF_EQUAL,
)

from .canned import finish


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
