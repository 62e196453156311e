"""@cached on methods: instances, descriptors, class and static methods."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from arketic_cache import RedisConnection, cached

from ..helpers import Flavor
from .helpers import bridged, settle


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
