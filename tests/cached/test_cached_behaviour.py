"""@cached behaviour on fakeredis and a real server, sync and async, faults included.

Most tests run on {memory, redis} x {sync, async} through the ``flavor`` fixture: the same
function body is decorated as a sync function, or as a coroutine function called through a
``Bridge``. Entries are inspected behind the library's back with the ``raw`` client, and hand-
written envelopes (``{"v": value, "x": expires_at, "d": compute_seconds}``) stand in for the
passage of time: nothing sleeps.

The fault tests run on a real redis-server of their own (``fresh_server``) with short socket
timeouts and a breaker on a manual clock, as in ``test_faults.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pydantic
import pytest
import redis

from arketic_cache import TTL, ConfigurationError, RedisConnection, StringKey, cached
from arketic_cache._core._cached import early_refresh_due, jittered_ttl
from arketic_cache.testing import RedisServer

from ..conftest import Bridge, Flavor


class Answer(pydantic.BaseModel):
    text: str
    score: float


class Query(pydantic.BaseModel):
    terms: list[str]
    page: int = 1


class ItemKey(StringKey[int]):
    template = "item:{item_id}"
    item_id: str


class SearchKey(StringKey[int]):
    template = "search:{term}"
    ttl = TTL.API_RESPONSE
    term: str


def settle(fn: Any) -> None:
    """Bind a decorated function and wait until its invalidation listener covers its L1.

    On subscribing, the listener flushes the L1 (invalidations published before it listened
    may be missing). Waiting for that before a scenario starts keeps it from wiping an L1
    entry at some random point of the test.
    """
    state = fn._state
    state.bind()
    assert state.coherence.settle(state.l1, 10), "the listener did not cover the L1"


def make(flavor: Flavor, body: Callable[..., Any], *, ready: bool = True, **options: Any) -> Any:
    """``body`` decorated in the test's flavour (a coroutine function behind a Bridge if async).

    The async face keeps the body's name, signature and annotations (``functools.wraps``), so
    its keys and codec are exactly those of an ``async def`` with the same signature. With
    ``ready``, the connection's listener is subscribed first (see ``settle``).
    """
    options.setdefault("connection", flavor.connection)
    if flavor.name == "sync":
        fn = cached(**options)(body)
    else:

        @functools.wraps(body)
        async def face(*args: Any, **kwargs: Any) -> Any:
            return body(*args, **kwargs)

        fn = cached(**options)(face)
    if ready and options.get("l2", True):
        settle(fn)
    return fn if flavor.name == "sync" else Bridge(fn, flavor.runner)


def bridged(flavor: Flavor, target: Any) -> Any:
    """``target`` itself when sync; behind a Bridge when its calls return coroutines."""
    return target if flavor.name == "sync" else Bridge(target, flavor.runner)


def envelope(value: Any, expires_in: float, compute_seconds: float = 0.0) -> str:
    """A stored entry as ``@cached`` writes it, expiring ``expires_in`` s from now."""
    return json.dumps({"v": value, "x": time.time() + expires_in, "d": compute_seconds})


def stored_value(raw: redis.Redis, key: str) -> Any:
    """The value held in the envelope at ``key``."""
    data = raw.get(key)
    assert isinstance(data, str)
    return json.loads(data)["v"]


def l1_deadlines(fn: Any) -> list[float]:
    """Seconds left (monotonic) for each entry in the decorated function's L1."""
    store = fn._state.l1
    with store.lock:
        return [deadline - time.monotonic() for _, deadline, _ in store.data.values()]


# -- arguments and keys -------------------------------------------------------------------------


class TestArgumentNormalisation:
    """Equivalent calls share one entry; distinct ones never collide."""

    def test_positional_keyword_and_default_share_an_entry(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        """f(1), f(x=1), f(1, 2), f(1, y=2), f(y=2, x=1): one computation and key."""
        calls: list[Any] = []

        def add(x: int, y: int = 2) -> int:
            calls.append((x, y))
            return x + y

        fn = make(flavor, add)
        assert [fn(1), fn(x=1), fn(1, 2), fn(1, y=2), fn(y=2, x=1)] == [3] * 5
        assert fn(1, 3) == 4
        assert calls == [(1, 2), (1, 3)]
        assert len(raw.keys("cached:*")) == 2

    def test_l1_only_equivalent_calls_share_an_entry(self, flavor: Flavor) -> None:
        """With l2=False too, f(1), f(x=1) and f(1, y=2) are one entry (computed once)."""
        calls: list[Any] = []

        def add(x: int, y: int = 2) -> int:
            calls.append((x, y))
            return x + y

        fn = make(flavor, add, l2=False)
        assert [fn(1), fn(x=1), fn(1, 2), fn(1, y=2)] == [3] * 4
        assert calls == [(1, 2)]

    def test_none_and_empty_string_do_not_collide(self, flavor: Flavor, raw: redis.Redis) -> None:
        """None, "" and "None" are three entries, each with its own result."""
        calls: list[Any] = []

        def show(x: str | None) -> str:
            calls.append(x)
            return repr(x)

        fn = make(flavor, show)
        assert [fn(None), fn(""), fn("None")] == ["None", "''", "'None'"]
        assert [fn(None), fn(""), fn("None")] == ["None", "''", "'None'"]
        fn.cache_clear()  # the same from L2
        assert [fn(None), fn(""), fn("None")] == ["None", "''", "'None'"]
        assert calls == [None, "", "None"]
        assert len(raw.keys("cached:*")) == 3

    def test_equal_values_of_different_types_do_not_collide(self, flavor: Flavor) -> None:
        """1, True and 1.0 are distinct keys in L2, so L1 must not merge them either."""

        def kind(x: object) -> str:
            return type(x).__name__

        fn = make(flavor, kind)
        assert [fn(1), fn(True), fn(1.0)] == ["int", "bool", "float"]

    def test_var_args_and_var_kwargs(self, flavor: Flavor, raw: redis.Redis) -> None:
        """*args/**kwargs: keyword order does not matter; anything else distinguishes."""
        calls: list[Any] = []

        def collect(*args: int, **kwargs: int) -> list[int]:
            calls.append((args, kwargs))
            return [*args, *sorted(kwargs.values())]

        fn = make(flavor, collect)
        assert fn(1, 2, a=3, b=4) == [1, 2, 3, 4]
        assert fn(1, 2, b=4, a=3) == [1, 2, 3, 4]
        assert fn(1, 2) == [1, 2]
        assert fn(1, 2, a=3) == [1, 2, 3]
        assert fn(2, 1) == [2, 1]
        assert len(calls) == 4
        assert len(raw.keys("cached:*")) == 4


class TestUnhashableArguments:
    """Dicts, lists and (unfrozen) models work: L1 finds them by their L2 key."""

    def test_dict_list_and_model_arguments(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Equal unhashable arguments share one entry (served from L1); different ones do not."""
        calls: list[Any] = []

        def search(filters: dict[str, int], tags: list[str], query: Query) -> int:
            calls.append((filters, tags, query))
            return sum(filters.values()) + len(tags) + query.page

        fn = make(flavor, search)
        query = Query(terms=["a", "b"], page=2)
        assert fn({"a": 1, "b": 2}, ["x"], query) == 6
        assert fn({"b": 2, "a": 1}, ["x"], Query(terms=["a", "b"], page=2)) == 6
        assert fn(filters={"a": 1, "b": 2}, tags=["x"], query=query) == 6
        assert len(calls) == 1
        info = fn.cache_info()
        assert (info.l1_hits, info.l2_hits, info.misses, info.l1_size) == (2, 0, 1, 1)
        assert fn({"a": 1, "b": 2}, ["x", "y"], query) == 7
        assert fn({"a": 1, "b": 2}, ["x"], Query(terms=["a"], page=2)) == 6
        assert len(calls) == 3
        assert len(raw.keys("cached:*")) == 3

    def test_invalidate_with_unhashable_arguments(self, flavor: Flavor, raw: redis.Redis) -> None:
        """invalidate with an equal dict removes the L2 entry."""
        calls: list[Any] = []

        def total(filters: dict[str, int]) -> int:
            calls.append(filters)
            return sum(filters.values())

        fn = make(flavor, total)
        assert fn({"a": 1}) == 1
        assert fn.invalidate({"a": 1}) is True
        assert raw.keys("cached:*") == []
        assert fn({"a": 1}) == 1
        assert len(calls) == 2


# -- methods -------------------------------------------------------------------------------------


def service_class(flavor: Flavor, calls: list[Any], **options: Any) -> type[Any]:
    """A class with a cached ``lookup(self, x)`` method in the test's flavour."""
    options.setdefault("connection", flavor.connection)
    if flavor.name == "sync":

        class Service:
            def __init__(self, tenant: str) -> None:
                self.tenant = tenant

            @cached(**options)
            def lookup(self, x: int) -> str:
                calls.append((self.tenant, x))
                return f"{self.tenant}:{x}"

        settle(Service.lookup)
        return Service

    class AsyncService:
        def __init__(self, tenant: str) -> None:
            self.tenant = tenant

        @cached(**options)
        async def lookup(self, x: int) -> str:
            calls.append((self.tenant, x))
            return f"{self.tenant}:{x}"

    settle(AsyncService.lookup)
    return AsyncService


def tenant_key(service: Any, x: int) -> str:
    """A key function that uses instance data."""
    return f"tenant:{service.tenant}:{x}"


class TestMethods:
    """``self`` never enters a key; instance data does only through a key the user writes."""

    def test_instances_share_entries(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Two instances share the L1 entry, and (L1 dropped) the L2 entry."""
        calls: list[Any] = []
        service = service_class(flavor, calls)
        a, b = service("a"), service("b")
        assert bridged(flavor, a.lookup)(1) == "a:1"
        assert bridged(flavor, b.lookup)(1) == "a:1"
        assert bridged(flavor, a.lookup).cache_info().l1_hits == 1
        service.lookup.cache_clear()
        assert bridged(flavor, service("c").lookup)(1) == "a:1"
        assert calls == [("a", 1)]
        assert service.lookup.cache_info().l2_hits == 1
        assert len(raw.keys("cached:*")) == 1

    def test_self_is_not_in_the_key(self, flavor: Flavor) -> None:
        """A method's key is the key of the same call without ``self`` (same qualname)."""
        calls: list[Any] = []
        service = service_class(flavor, calls)
        memo = service.lookup._state
        assert memo.keyer((service("a"), 1), {}) == memo.keyer((service("b"), 1), {})
        assert memo.keyer((service("a"), 1), {}) == memo.keyer((service("a"),), {"x": 1})
        assert memo.keyer((service("a"), 1), {}) != memo.keyer((service("a"), 2), {})

    def test_key_function_with_instance_data_separates_instances_in_l2(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        """key=f(self, x) reading self.tenant: each tenant its own Redis entry (L1 off)."""
        calls: list[Any] = []
        service = service_class(flavor, calls, key=tenant_key, l1=False)
        assert bridged(flavor, service("a").lookup)(1) == "a:1"
        assert bridged(flavor, service("b").lookup)(1) == "b:1"
        assert bridged(flavor, service("a").lookup)(1) == "a:1"
        assert calls == [("a", 1), ("b", 1)]
        assert sorted(raw.keys("tenant:*")) == ["tenant:a:1", "tenant:b:1"]

    def test_key_function_with_instance_data_separates_instances_in_l1(
        self, flavor: Flavor
    ) -> None:
        """With L1 on, tenant b must not be served tenant a's value from L1."""
        calls: list[Any] = []
        service = service_class(flavor, calls, key=tenant_key)
        assert bridged(flavor, service("a").lookup)(1) == "a:1"
        assert bridged(flavor, service("b").lookup)(1) == "b:1"

    def test_invalidate_via_the_instance(self, flavor: Flavor, raw: redis.Redis) -> None:
        """instance.method.invalidate(x) drops the shared entry (L1 and L2) for every instance."""
        calls: list[Any] = []
        service = service_class(flavor, calls)
        a, b = service("a"), service("b")
        assert bridged(flavor, a.lookup)(1) == "a:1"
        assert bridged(flavor, b.lookup).invalidate(1) is True
        assert raw.keys("cached:*") == []
        assert service.lookup.cache_info().l1_size == 0
        assert bridged(flavor, b.lookup)(1) == "b:1"
        assert bridged(flavor, a.lookup)(1) == "b:1"
        assert bridged(flavor, a.lookup).invalidate(x=1) is True
        assert bridged(flavor, a.lookup).invalidate(1) is False
        assert calls == [("a", 1), ("b", 1)]


def descriptor_class(flavor: Flavor, calls: list[Any], conn: RedisConnection) -> type[Any]:
    """Class and static methods in both decorator orders, in the test's flavour."""
    owner = _descriptor_class(flavor, calls, conn)
    for name in ("outer_classmethod", "inner_classmethod", "outer_staticmethod"):
        settle(getattr(owner, name))
    settle(owner.__dict__["inner_staticmethod"].__func__)
    return owner


def _descriptor_class(flavor: Flavor, calls: list[Any], conn: RedisConnection) -> type[Any]:
    if flavor.name == "sync":

        class Sync:
            scale = 10

            @classmethod
            @cached(connection=conn)
            def outer_classmethod(cls, x: int) -> int:
                calls.append(("outer_classmethod", x))
                return x * cls.scale

            @cached(connection=conn)
            @classmethod
            def inner_classmethod(cls, x: int) -> int:
                calls.append(("inner_classmethod", x))
                return x * cls.scale

            @staticmethod
            @cached(connection=conn)
            def outer_staticmethod(x: int) -> int:
                calls.append(("outer_staticmethod", x))
                return x * 100

            @cached(connection=conn)
            @staticmethod
            def inner_staticmethod(x: int) -> int:
                calls.append(("inner_staticmethod", x))
                return x * 100

        return Sync

    class Async:
        scale = 10

        @classmethod
        @cached(connection=conn)
        async def outer_classmethod(cls, x: int) -> int:
            calls.append(("outer_classmethod", x))
            return x * cls.scale

        @cached(connection=conn)
        @classmethod
        async def inner_classmethod(cls, x: int) -> int:
            calls.append(("inner_classmethod", x))
            return x * cls.scale

        @staticmethod
        @cached(connection=conn)
        async def outer_staticmethod(x: int) -> int:
            calls.append(("outer_staticmethod", x))
            return x * 100

        @cached(connection=conn)
        @staticmethod
        async def inner_staticmethod(x: int) -> int:
            calls.append(("inner_staticmethod", x))
            return x * 100

    return Async


@pytest.mark.parametrize(
    ("name", "result"),
    [
        ("outer_classmethod", 30),
        ("inner_classmethod", 30),
        ("outer_staticmethod", 300),
        ("inner_staticmethod", 300),
    ],
)
def test_class_and_static_methods(flavor: Flavor, raw: redis.Redis, name: str, result: int) -> None:
    """Called on the class and on an instance: one computation, one key, invalidate works."""
    calls: list[Any] = []
    owner = descriptor_class(flavor, calls, flavor.connection)
    on_class = bridged(flavor, getattr(owner, name))
    on_instance = bridged(flavor, getattr(owner(), name))
    assert on_class(3) == result
    assert on_instance(3) == result
    assert on_class(x=3) == result
    assert calls == [(name, 3)]
    assert len(raw.keys("cached:*")) == 1
    assert on_class.invalidate(3) is True
    assert raw.keys("cached:*") == []
    assert on_instance(3) == result
    assert on_instance.invalidate(x=3) is True
    assert on_class(3) == result
    assert calls == [(name, 3)] * 3


# -- key= and exclude= ---------------------------------------------------------------------------


class TestKeyOption:
    """key= a schema (fields from the arguments) or a function; exclude= parameters."""

    def test_key_schema_takes_fields_from_arguments(self, flavor: Flavor, raw: redis.Redis) -> None:
        """key=ItemKey renders item:{item_id} from the argument, escaped like every schema."""
        calls: list[Any] = []

        def stock(item_id: str, verbose: bool = False) -> int:
            calls.append((item_id, verbose))
            return len(item_id)

        fn = make(flavor, stock, key=ItemKey)
        assert fn("a:b*") == 4
        assert raw.keys("item:*") == [ItemKey(item_id="a:b*").render()] == ["item:a%3Ab%2A"]
        assert stored_value(raw, "item:a%3Ab%2A") == 4
        assert fn(item_id="a:b*", verbose=True) == 4  # not a schema field: same entry
        assert calls == [("a:b*", False)]

    def test_key_schema_ttl_is_used(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Without ttl=, a schema's TTL row applies (SearchKey: API_RESPONSE, 300 s)."""

        def hits(term: str) -> int:
            return len(term)

        fn = make(flavor, hits, key=SearchKey)
        assert fn("abc") == 3
        assert 290 <= raw.ttl("search:abc") <= 300

    def test_key_schema_needing_a_missing_parameter(self) -> None:
        """A schema field the function lacks is a ConfigurationError at decoration."""

        def stock(item: str) -> int:
            return len(item)

        decorate = cached(key=ItemKey, l2=False)
        with pytest.raises(ConfigurationError, match="item_id"):
            decorate(stock)

    def test_key_function(self, flavor: Flavor, raw: redis.Redis) -> None:
        """key= a function of the arguments names the Redis key."""
        calls: list[Any] = []

        def greet(name: str, punctuation: str = "!") -> str:
            calls.append(name)
            return f"hello {name}{punctuation}"

        fn = make(flavor, greet, key=lambda name, punctuation="!": f"greeting:{name}")
        assert fn("ada") == "hello ada!"
        assert raw.keys("greeting:*") == ["greeting:ada"]
        assert stored_value(raw, "greeting:ada") == "hello ada!"
        fn.cache_clear()
        assert fn("ada") == "hello ada!"
        assert calls == ["ada"]

    def test_key_prefix_applies(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The connection's key_prefix precedes default and schema keys."""
        conn = flavor.connect(key_prefix="app:")

        def stock(item_id: str) -> int:
            return len(item_id)

        assert make(flavor, stock, connection=conn)("xy") == 2
        assert make(flavor, stock, connection=conn, key=ItemKey)("xy") == 2
        keys = sorted(str(key) for key in raw.keys("*"))
        assert len(keys) == 2
        assert keys[0].startswith("app:cached:")
        assert keys[1] == "app:item:xy"


class Session:
    """An injected dependency: hashable by identity, meaningless in a key."""


class TestExclude:
    """exclude= leaves parameters out of the key."""

    def test_excluded_parameter_is_not_in_the_key(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Calls differing only in an excluded argument compute once and share one key."""
        calls: list[Any] = []

        def profile(user_id: int, session: Session) -> str:
            calls.append(user_id)
            return f"user {user_id}"

        fn = make(flavor, profile, exclude=("session",))
        assert fn(1, Session()) == "user 1"
        assert fn(1, session=Session()) == "user 1"
        assert fn(2, Session()) == "user 2"
        assert calls == [1, 2]
        assert len(raw.keys("cached:*")) == 2

    def test_excluded_parameter_does_not_split_l1(self, flavor: Flavor) -> None:
        """A new session per call still hits L1 (and L1 holds no reference to sessions)."""

        def profile(user_id: int, session: Session) -> str:
            return f"user {user_id}"

        fn = make(flavor, profile, exclude=("session",))
        for _ in range(3):
            assert fn(1, Session()) == "user 1"
        info = fn.cache_info()
        assert (info.l1_hits, info.l2_hits, info.misses, info.l1_size) == (2, 0, 1, 1)

    def test_unknown_excluded_parameter(self) -> None:
        """Excluding a parameter the function lacks is a ConfigurationError at decoration."""

        def profile(user_id: int) -> str:
            return str(user_id)

        with pytest.raises(ConfigurationError, match="session"):
            cached(exclude=("session",), l2=False)(profile)


# -- values --------------------------------------------------------------------------------------


class TestValues:
    """None caching, the condition predicate, typed values from L2."""

    def test_none_not_cached_by_default(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A None result is recomputed each time and never written."""
        calls: list[Any] = []

        def find(x: int) -> int | None:
            calls.append(x)
            return None

        fn = make(flavor, find)
        assert fn(1) is None
        assert fn(1) is None
        assert calls == [1, 1]
        assert raw.keys("*") == []
        assert fn.cache_info().l1_size == 0

    def test_none_cached_when_asked(self, flavor: Flavor, raw: redis.Redis) -> None:
        """cache_none=True: None is an L1 and an L2 hit, distinct from a miss."""
        calls: list[Any] = []

        def find(x: int) -> int | None:
            calls.append(x)
            return None

        fn = make(flavor, find, cache_none=True, namespace="find")
        assert fn(1) is None
        assert fn(1) is None
        assert len(raw.keys("cached:*")) == 1
        other = make(flavor, find, cache_none=True, namespace="find", l1=False)
        assert other(1) is None
        assert other.cache_info().l2_hits == 1
        assert calls == [1]

    def test_condition_decides_what_is_cached(self, flavor: Flavor, raw: redis.Redis) -> None:
        """condition=predicate: rejected results are recomputed, accepted ones cached."""
        calls: list[Any] = []

        def score(x: int) -> int:
            calls.append(x)
            return x

        fn = make(flavor, score, condition=lambda value: value > 0)
        assert [fn(-1), fn(-1), fn(5), fn(5)] == [-1, -1, 5, 5]
        assert calls == [-1, -1, 5]
        assert len(raw.keys("cached:*")) == 1

    def test_model_comes_back_from_l2(self, flavor: Flavor) -> None:
        """A pydantic return value is that model again from L2 (L1 dropped)."""

        def answer(question: str) -> Answer:
            return Answer(text=question.upper(), score=0.5)

        fn = make(flavor, answer)
        first = fn("hi")
        fn.cache_clear()
        again = fn("hi")
        assert isinstance(again, Answer)
        assert again == first
        assert fn.cache_info().l2_hits == 1


# -- TTL -----------------------------------------------------------------------------------------


def identity(x: int) -> int:
    return x


class TestTTL:
    """ttl= an int, a TTL row or the connection's default; jitter bounds."""

    def test_int_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """ttl=120 → the Redis key expires in at most 120 s."""
        make(flavor, identity, ttl=120)(1)
        (key,) = raw.keys("cached:*")
        assert 110 <= raw.ttl(key) <= 120

    def test_ttl_row(self, flavor: Flavor, raw: redis.Redis) -> None:
        """ttl=TTL.SEARCH_RESULT → 900 s in Redis."""
        make(flavor, identity, ttl=TTL.SEARCH_RESULT)(1)
        (key,) = raw.keys("cached:*")
        assert 890 <= raw.ttl(key) <= 900

    def test_default_ttl_from_connection(self, flavor: Flavor, raw: redis.Redis) -> None:
        """No ttl= → the connection's default_ttl (RESPONSE_CACHE_TTL)."""
        conn = flavor.connect(default_ttl=1234)
        make(flavor, identity, connection=conn)(1)
        (key,) = raw.keys("cached:*")
        assert 1224 <= raw.ttl(key) <= 1234

    def test_jitter_stays_within_bounds(self, flavor: Flavor, raw: redis.Redis) -> None:
        """jitter=0.5, ttl=1000: every Redis TTL is in [500, 1000], and they differ."""
        fn = make(flavor, identity, ttl=1000, jitter=0.5)
        for x in range(20):
            fn(x)
        ttls = [raw.ttl(key) for key in raw.keys("cached:*")]
        assert len(ttls) == 20
        assert all(500 <= ttl <= 1000 for ttl in ttls), ttls
        assert len(set(ttls)) > 1  # 20 identical draws out of ~500 values: never

    def test_l1_lives_no_longer_than_the_ttl(self, flavor: Flavor) -> None:
        """The L1 copy of a fresh entry expires within the entry's TTL."""
        fn = make(flavor, identity, ttl=60)
        fn(1)
        (left,) = l1_deadlines(fn)
        assert 0 < left <= 60

    def test_l1_ttl_caps_l1(self, flavor: Flavor, raw: redis.Redis) -> None:
        """l1_ttl=5 keeps the L1 copy 5 s at most, while Redis keeps it for the TTL."""
        fn = make(flavor, identity, ttl=600, l1_ttl=5)
        fn(1)
        (left,) = l1_deadlines(fn)
        assert 0 < left <= 5
        (key,) = raw.keys("cached:*")
        assert raw.ttl(key) > 5


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999999])
@pytest.mark.parametrize(("ttl", "jitter"), [(1000, 0.5), (60, 0.1), (7, 0.9), (1, 0.5)])
def test_jittered_ttl_bounds(ttl: int, jitter: float, draw: float) -> None:
    """jittered_ttl keeps [ttl * (1 - jitter), ttl], never below 1 s; a 0 draw keeps ttl."""
    result = jittered_ttl(ttl, jitter, draw)
    assert max(1, ttl * (1 - jitter)) <= result <= ttl
    if draw == 0.0:
        assert result == ttl


@pytest.mark.parametrize(
    "options",
    [
        {"ttl": 0},
        {"ttl": -5},
        {"ttl": 1.5},
        {"ttl": True},
        {"jitter": 1},
        {"jitter": -0.1},
        {"l1": False, "l2": False},
        {"early_refresh": -1.0},
        {"l1_ttl": 0},
    ],
)
def test_invalid_options(options: dict[str, Any]) -> None:
    """Each invalid option is a ConfigurationError when the function is decorated."""
    decorate = cached(**options)
    with pytest.raises(ConfigurationError):
        decorate(identity)


# -- levels --------------------------------------------------------------------------------------


class TestLevels:
    """L1 only, L2 only, and an L1 copy never outliving its L2 entry."""

    def test_l1_disabled_reads_redis_every_time(self, flavor: Flavor) -> None:
        """l1=False: one miss, then every call is an L2 hit; L1 stays empty."""
        calls: list[Any] = []

        def double(x: int) -> int:
            calls.append(x)
            return 2 * x

        fn = make(flavor, double, l1=False)
        assert [fn(4) for _ in range(4)] == [8] * 4
        assert calls == [4]
        assert tuple(fn.cache_info())[:5] == (0, 3, 1, 0, 0)

    def test_l2_disabled(self, flavor: Flavor, raw: redis.Redis) -> None:
        """l2=False: nothing in Redis, L1 serves, invalidate drops the L1 entry."""
        calls: list[Any] = []

        def double(x: int) -> int:
            calls.append(x)
            return 2 * x

        fn = make(flavor, double, l2=False)
        assert [fn(4), fn(4)] == [8, 8]
        assert raw.keys("*") == []
        info = fn.cache_info()
        assert (info.l1_hits, info.l1_size) == (1, 1)
        assert fn.invalidate(4) is True
        assert fn.cache_info().l1_size == 0
        assert fn.invalidate(4) is False
        assert fn(4) == 8
        assert calls == [4, 4]
        assert raw.keys("*") == []

    def test_writer_expiry_is_not_trusted(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A writer's own expiry stamp (long past: its clock was wrong) is ignored: Redis' TTL
        decides, so the entry is served and kept in L1 for Redis' remaining TTL at most."""
        calls: list[Any] = []

        def compute(x: int) -> int:
            calls.append(x)
            return 100

        raw.set("env:1", envelope(7, expires_in=-3600), ex=60)
        fn = make(flavor, compute, key=lambda x: f"env:{x}", ttl=600)
        assert fn(1) == 7
        assert calls == []
        (left,) = l1_deadlines(fn)
        assert 0 < left <= 60

    def test_l1_copy_expires_with_its_l2_entry(self, flavor: Flavor, raw: redis.Redis) -> None:
        """An entry Redis expires in 30 s (written with TTL 3600, clock stamp far ahead) is kept
        in L1 for 30 s at most."""
        raw.set("env:1", envelope(7, expires_in=7200), ex=30)
        fn = make(flavor, identity, key=lambda x: f"env:{x}", ttl=3600)
        assert fn(1) == 7
        (left,) = l1_deadlines(fn)
        assert 0 < left <= 30
        assert fn(1) == 7
        assert fn.cache_info().l1_hits == 1


# -- corrupt L2 ----------------------------------------------------------------------------------


CORRUPT = [
    pytest.param(b"\xff\xfe\x00\x81 garbage", id="garbage-bytes"),
    pytest.param(envelope("not a number", expires_in=60), id="wrong-value-type"),
    pytest.param(json.dumps([1, 2, 3]), id="json-not-an-envelope"),
    pytest.param(json.dumps({"d": 0.5}), id="envelope-without-value"),
    pytest.param("", id="empty-string"),
]


class TestCorruptL2:
    """Whatever sits at the key, the call is a miss: the function runs, nothing is raised."""

    @pytest.mark.parametrize("data", CORRUPT)
    def test_corrupt_value_is_a_miss_and_replaced(
        self, flavor: Flavor, raw: redis.Redis, data: bytes | str
    ) -> None:
        """The function's result is returned and replaces the corrupt entry."""
        calls: list[Any] = []

        def compute(x: int) -> int:
            calls.append(x)
            return 42

        raw.set("env:1", data, ex=60)
        fn = make(flavor, compute, key=lambda x: f"env:{x}")
        assert fn(1) == 42
        assert calls == [1]
        assert fn.cache_info().misses == 1
        assert stored_value(raw, "env:1") == 42

    def test_wrong_type_key_is_a_miss(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A list at the key: the function runs, its result comes back, the error is counted."""
        calls: list[Any] = []

        def compute(x: int) -> int:
            calls.append(x)
            return 42

        raw.rpush("env:1", "a", "b")
        fn = make(flavor, compute, key=lambda x: f"env:{x}")
        assert fn(1) == 42
        assert calls == [1]
        info = fn.cache_info()
        assert (info.misses, info.errors) == (1, 1)
        assert flavor.connection.state.breaker.state == "closed"  # Redis answered

    def test_wrong_type_key_is_replaced(self, flavor: Flavor, raw: redis.Redis) -> None:
        """After a miss on a wrong-type key, the result is stored like after any miss."""

        def compute(x: int) -> int:
            return 42

        raw.rpush("env:1", "a", "b")
        assert make(flavor, compute, key=lambda x: f"env:{x}")(1) == 42
        assert raw.type("env:1") == "string"
        assert stored_value(raw, "env:1") == 42


# -- counters, cache_clear, invalidate -----------------------------------------------------------


class TestControl:
    """cache_info, cache_clear and invalidate."""

    def test_cache_info_counts(self, flavor: Flavor) -> None:
        """Misses, L1 hits, L2 hits after cache_clear, and the L1 size."""
        fn = make(flavor, identity)
        assert tuple(fn.cache_info())[:5] == (0, 0, 0, 0, 0)
        fn(1)
        assert tuple(fn.cache_info())[:5] == (0, 0, 1, 0, 1)
        fn(1)
        assert tuple(fn.cache_info())[:5] == (1, 0, 1, 0, 1)
        fn(2)
        assert tuple(fn.cache_info())[:5] == (1, 0, 2, 0, 2)
        fn.cache_clear()
        assert tuple(fn.cache_info())[:5] == (1, 0, 2, 0, 0)
        fn(1)
        fn(1)
        assert tuple(fn.cache_info())[:5] == (2, 1, 2, 0, 1)

    def test_cache_info_counts_errors(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A wrong-type key and a value that does not fit its annotation are errors, not raised."""

        def mislabelled(x: int) -> int:
            return "not an int"  # type: ignore[return-value]

        fn = make(flavor, mislabelled, key=lambda x: f"err:{x}")
        assert fn(1) == "not an int"
        assert fn.cache_info().errors == 1
        assert raw.keys("err:*") == []
        raw.rpush("err:2", "a")
        assert fn(2) == "not an int"
        assert fn.cache_info().errors == 3  # the list at the key, and again the bad result

    def test_cache_clear_keeps_l2(self, flavor: Flavor, raw: redis.Redis) -> None:
        """cache_clear empties L1 only: Redis keeps the entry and serves it next."""
        calls: list[Any] = []

        def double(x: int) -> int:
            calls.append(x)
            return 2 * x

        fn = make(flavor, double)
        fn(1)
        fn.cache_clear()
        assert fn.cache_info().l1_size == 0
        assert len(raw.keys("cached:*")) == 1
        assert fn(1) == 2
        assert calls == [1]

    def test_invalidate_any_call_shape(self, flavor: Flavor, raw: redis.Redis) -> None:
        """invalidate(x=1) removes the entry written by f(1) and f(1, 2) from L1 and L2."""
        calls: list[Any] = []

        def add(x: int, y: int = 2) -> int:
            calls.append((x, y))
            return x + y

        fn = make(flavor, add)
        fn(1)
        fn(1, 2)
        fn(5)
        assert fn.invalidate(x=1) is True
        assert len(raw.keys("cached:*")) == 1
        assert fn.cache_info().l1_size == 1  # only f(5) is left
        assert fn.invalidate(1, y=2) is False
        assert fn(1) == 3
        assert fn(5) == 7
        assert calls == [(1, 2), (5, 2), (1, 2)]


# -- early refresh (XFetch) ----------------------------------------------------------------------


class TestEarlyRefresh:
    """XFetch: an entry close to expiry and slow to compute is recomputed early."""

    def test_math_with_fixed_draws(self) -> None:
        """due iff -d * beta * ln(draw) >= time left; never with beta 0 or d 0."""
        d, left = 10.0, 5.0
        assert early_refresh_due(d, 1.0, left, 0.3) is True  # 12.04 >= 5
        assert early_refresh_due(d, 1.0, left, 0.9) is False  # 1.05 < 5
        assert early_refresh_due(d, 1.0, left, 1.0) is False  # ln 1 = 0: never early
        assert early_refresh_due(d, 0.5, left, 0.5) is False  # 3.47 < 5
        assert early_refresh_due(d, 2.0, left, 0.5) is True  # 13.9 >= 5
        assert early_refresh_due(d, 0.0, left, 0.01) is False
        assert early_refresh_due(0.0, 1.0, left, 0.01) is False
        assert early_refresh_due(d, 1.0, 0.0, 1.0) is True  # at expiry: due

    def test_due_entry_is_recomputed_while_valid(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A valid entry that took ages to compute is refreshed early, and the new value stored."""
        calls: list[Any] = []

        def compute(x: int) -> int:
            calls.append(x)
            return 2

        raw.set("xf:1", envelope(1, expires_in=60, compute_seconds=1e12), ex=60)
        fn = make(flavor, compute, key=lambda x: f"xf:{x}", early_refresh=1.0, ttl=600)
        assert fn(1) == 2
        assert calls == [1]
        assert stored_value(raw, "xf:1") == 2
        assert raw.ttl("xf:1") > 60
        assert fn(1) == 2  # the fresh value, from L1
        assert calls == [1]

    def test_without_early_refresh_the_entry_is_served(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        """The same entry is simply served when early_refresh is off."""
        raw.set("xf:1", envelope(1, expires_in=60, compute_seconds=1e12), ex=60)
        fn = make(flavor, identity, key=lambda x: f"xf:{x}")
        assert fn(1) == 1
        assert fn.cache_info().l2_hits == 1

    def test_fast_entry_far_from_expiry_is_served(self, flavor: Flavor, raw: redis.Redis) -> None:
        """early_refresh on, but an entry that computes in no time is not refreshed."""
        raw.set("xf:1", envelope(1, expires_in=3600, compute_seconds=0.0), ex=3600)
        fn = make(flavor, identity, key=lambda x: f"xf:{x}", early_refresh=1.0)
        assert fn(1) == 1
        assert fn.cache_info().l2_hits == 1


# -- faults on a real server ---------------------------------------------------------------------

#: A read from a frozen server costs this much; a healthy local server answers far sooner.
TIMEOUT = 0.1
CONNECT_TIMEOUT = 0.2


class ManualClock:
    """A monotonic clock for the breaker that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FaultRig:
    """A fresh server, a connection with short timeouts and a manual breaker clock, a flavour."""

    def __init__(self, name: str, server: RedisServer, runner: asyncio.Runner) -> None:
        self.name = name
        self.server = server
        self.clock = ManualClock()
        self.flavor = Flavor(name, server.url, runner)
        self.conn = self.flavor.connect(
            clock=self.clock, socket_timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT
        )
        self.calls: list[int] = []
        self._paused = False

    def function(self, *, ready: bool = True) -> Any:
        """A cached ``triple(x) = 3x`` in this rig's flavour, recording its calls.

        ``ready``: wait for the invalidation listener first (the server must be up).
        """
        calls = self.calls

        def triple(x: int) -> int:
            calls.append(x)
            return 3 * x

        return make(self.flavor, triple, ready=ready, connection=self.conn)

    @property
    def breaker(self) -> str:
        state: str = self.conn.state.breaker.state
        return state

    def error_deltas(self, fn: Any, args: range) -> list[int]:
        """Call fn(x) for each x, checking its own result; Redis errors added by each call."""
        deltas = []
        for x in args:
            before = self.conn.state.errors
            assert fn(x) == 3 * x
            deltas.append(self.conn.state.errors - before)
        return deltas

    def admin(self) -> redis.Redis:
        """A plain client to the server (close it)."""
        return redis.Redis.from_url(self.server.url, decode_responses=True)

    def stored(self, x: int) -> bool:
        """True if Redis holds an entry of value 3x (looked up by value: keys are hashes)."""
        with self.admin() as admin:
            return any(
                json.loads(admin.get(key) or "{}").get("v") == 3 * x
                for key in admin.keys("cached:*")
            )

    def pause_writes(self) -> None:
        """CLIENT PAUSE WRITE for a minute (lifted by ``resume_writes`` or at teardown)."""
        with self.admin() as admin:
            admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        self._paused = True

    def resume_writes(self) -> None:
        with self.admin() as admin:
            admin.execute_command("CLIENT", "UNPAUSE")
        self._paused = False

    def recover(self) -> None:
        """Let the breaker's cool-down pass."""
        self.clock.advance(self.conn.settings.breaker_cooldown + 0.001)

    def close(self) -> None:
        """Thaw and unpause the server if it runs, close every connection, kill it."""
        if self.server.process is not None:
            self.server.thaw()
            if self._paused:
                self.resume_writes()
        self.flavor.close()
        if self.server.process is not None:
            self.server.kill()


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest, fresh_server: RedisServer) -> Iterator[FaultRig]:
    """A sync or async (bridged) rig on this test's own server and event loop."""
    with asyncio.Runner() as runner:
        rig = FaultRig(request.param, fresh_server, runner)
        yield rig
        rig.close()


@pytest.mark.redis
class TestFaults:
    """Redis down, killed, frozen or refusing writes: the function's own result, always."""

    def test_down_at_start(self, rig: FaultRig) -> None:
        """One Redis attempt per call until the breaker opens, none after; then recovery."""
        rig.server.kill()
        fn = rig.function(ready=False)
        assert rig.error_deltas(fn, range(1, 4)) == [1, 1, 1]
        assert rig.breaker == "open"
        assert rig.error_deltas(fn, range(4, 8)) == [0, 0, 0, 0]
        assert rig.conn.state.short_circuits == 4
        rig.server.start(rig.server.port)
        rig.recover()
        assert fn(10) == 30
        assert rig.breaker == "closed"
        assert rig.stored(10)
        assert fn(10) == 30
        assert rig.calls.count(10) == 1

    def test_killed_degrades_and_recovers(self, rig: FaultRig) -> None:
        """Killed mid-run: own results, the breaker opens after 3 calls; restarted: caching."""
        fn = rig.function()
        assert fn(1) == 3
        assert rig.stored(1)
        rig.server.kill()
        assert rig.error_deltas(fn, range(2, 5)) == [1, 1, 1]
        assert rig.breaker == "open"
        assert rig.error_deltas(fn, range(5, 8)) == [0, 0, 0]
        assert isinstance(fn.invalidate(2), bool)  # no exception, no Redis call
        assert rig.conn.state.errors == 3
        rig.server.start(rig.server.port)
        rig.recover()
        assert fn(20) == 60
        assert rig.breaker == "closed"
        assert rig.stored(20)
        assert fn(20) == 60
        assert rig.calls.count(20) == 1

    def test_killed_l1_still_serves(self, rig: FaultRig) -> None:
        """Losing Redis bounds every L1 entry to the grace period; within it the function's
        own results (old and new) still come from L1, without a Redis attempt."""
        fn = rig.function()
        assert fn(1) == 3
        coherence = fn._state.coherence
        rig.server.kill()
        assert coherence.wait_until(lambda: coherence.mode == "none", 10)  # loss noticed
        grace = rig.conn.settings.coherence_grace
        assert all(0 < left <= grace for left in l1_deadlines(fn))
        errors = rig.conn.state.errors
        assert fn(1) == 3  # from L1: no Redis attempt, no computation
        assert rig.conn.state.errors == errors
        assert fn(2) == 6  # computed (Redis is down: one failed attempt) ...
        errors = rig.conn.state.errors
        assert fn(2) == 6  # ... then from L1
        assert rig.calls == [1, 2]
        assert rig.conn.state.errors == errors
        assert all(0 < left <= grace for left in l1_deadlines(fn))

    def test_frozen(self, rig: FaultRig) -> None:
        """SIGSTOP: L1 serves, one timeout per call until the breaker opens; thawed: caching."""
        fn = rig.function()
        assert fn(1) == 3
        rig.server.freeze()
        assert fn(1) == 3  # L1: no Redis call
        assert rig.conn.state.errors == 0
        assert rig.error_deltas(fn, range(2, 5)) == [1, 1, 1]
        assert rig.breaker == "open"
        assert rig.error_deltas(fn, range(5, 8)) == [0, 0, 0]
        assert rig.calls == [1, 2, 3, 4, 5, 6, 7]
        rig.server.thaw()
        rig.recover()
        assert fn(20) == 60
        assert rig.breaker == "closed"
        assert rig.stored(20)

    def test_writes_refused_out_of_memory(self, rig: FaultRig) -> None:
        """maxmemory exceeded (noeviction): SET is refused; own results, L1 serves, no timeout."""
        fn = rig.function()
        assert fn(1) == 3
        with rig.admin() as admin:
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", "1")
        assert fn(1) == 3
        assert rig.error_deltas(fn, range(2, 5)) == [1, 1, 1]  # the refused SET of each call
        assert fn.cache_info().errors == 3
        assert not rig.stored(2)
        assert rig.breaker == "closed"  # Redis answered: the link is fine
        assert rig.calls == [1, 2, 3, 4]
        with rig.admin() as admin:
            admin.config_set("maxmemory", "0")
        assert fn(20) == 60
        assert rig.stored(20)

    def test_writes_paused_open_the_breaker(self, rig: FaultRig) -> None:
        """CLIENT PAUSE WRITE: each SET times out; after 3 such timeouts Redis is skipped."""
        fn = rig.function()
        assert fn(1) == 3
        rig.pause_writes()
        assert fn(1) == 3  # L1
        assert rig.error_deltas(fn, range(2, 5)) == [1, 1, 1]
        assert rig.breaker == "open"
        assert rig.error_deltas(fn, range(5, 8)) == [0, 0, 0]
        rig.resume_writes()
        rig.recover()
        assert fn(20) == 60
        assert rig.stored(20)
