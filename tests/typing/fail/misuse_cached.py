"""``@cached`` misuses mypy must reject. Each offending line ends with ``# E: <code>``.

Checked by ``tests/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import TTL, AsyncCached, Cached, cached
from tests.typing.typing_fixtures import Profile, ProfileKey


@cached(ttl=TTL.API_RESPONSE)
def load_profile(user_id: int, *, fresh: bool = False) -> Profile:
    return Profile(name=str(user_id))


@cached(ttl=TTL.SEARCH_RESULT)
async def search(query_id: int, limit: int = 10) -> list[int]:
    return [query_id] * limit


class Service:
    @cached()
    def profile(self, user_id: int) -> Profile:
        return Profile(name=str(user_id))

    @cached()
    async def friends(self, user_id: int) -> list[Profile]:
        return []


def calls() -> None:
    load_profile("1")  # E: arg-type
    load_profile()  # E: call-arg
    load_profile(1, stale=True)  # E: call-arg
    load_profile(1, True)  # E: call-arg
    name: int = load_profile(1).name  # E: assignment
    load_profile.invalidate("1")  # E: arg-type
    load_profile.invalidate()  # E: call-arg
    dropped: str = load_profile.invalidate(1)  # E: assignment
    load_profile.cache_info().hits  # E: attr-defined


def wrapper_kinds() -> None:
    wrong_kind: AsyncCached[[int], Profile] = load_profile  # E: assignment
    wrong_params: Cached[[str], Profile] = load_profile  # E: assignment


async def forgotten_await() -> None:
    results: list[int] = search(1)  # E: assignment
    search(1)[0]  # E: index
    search(1)  # E: unused-coroutine
    search.invalidate(1)  # E: unused-coroutine
    if search.invalidate(1):  # E: truthy-bool
        pass
    await search("q")  # E: arg-type
    await search.invalidate(1, 2, 3)  # E: call-arg


async def methods() -> None:
    service = Service()
    service.profile("1")  # E: arg-type
    service.profile()  # E: call-arg
    service.profile(service, 1)  # E: call-arg, arg-type
    service.profile.invalidate("1")  # E: arg-type
    await service.friends("1")  # E: arg-type
    service.friends.invalidate(1)  # E: unused-coroutine


@cached(ttl="60")  # E: arg-type
def string_ttl(user_id: int) -> Profile:
    return Profile(name=str(user_id))


@cached(ttl=60.0)  # E: arg-type
def float_ttl(user_id: int) -> Profile:
    return Profile(name=str(user_id))


@cached(key=ProfileKey(user_id=1))  # E: arg-type
def key_instance(user_id: int) -> Profile:
    return Profile(name=str(user_id))


@cached(key=lambda user_id: 42)  # E: arg-type, return-value
def int_key(user_id: int) -> Profile:
    return Profile(name=str(user_id))


@cached(condition=lambda profile: "cache me")  # E: arg-type, return-value
def string_condition(user_id: int) -> Profile:
    return Profile(name=str(user_id))


@cached(l1="yes")  # E: arg-type
def string_flag(user_id: int) -> Profile:
    return Profile(name=str(user_id))


@cached  # E: arg-type
def no_parentheses(user_id: int) -> Profile:
    return Profile(name=str(user_id))


cached()(42)  # E: call-overload

