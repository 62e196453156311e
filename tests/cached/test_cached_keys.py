"""@cached keys: argument normalisation, unhashable arguments, ``key=`` and ``exclude=``."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from arketic_cache import ConfigurationError, cached

from ..helpers import Flavor
from .helpers import ItemKey, Query, SearchKey, make, stored_value


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
