"""STRING and HASH repository misuses mypy must reject. Offending lines end with ``# E: <code>``.

Checked by ``tests/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import (
    HashRepository,
    StringRepository,
    SyncStringRepository,
    UserProfileKey,
)
from tests.typing.typing_fixtures import (
    AccountKey,
    Preferences,
    PreferencesKey,
    Profile,
    ProfileKey,
)


async def foreign_keys() -> None:
    profiles = StringRepository(ProfileKey)
    # AccountKey holds a Profile too: the schema, not only the value type, must match.
    await profiles.get(AccountKey(account_id="a"))  # E: arg-type
    await profiles.set(AccountKey(account_id="a"), Profile(name="Ada"))  # E: arg-type
    await profiles.get(UserProfileKey(user_id=1))  # E: arg-type
    await profiles.get_many([ProfileKey(user_id=1), AccountKey(account_id="a")])  # E: list-item
    await profiles.set_many({AccountKey(account_id="a"): Profile(name="Ada")})  # E: dict-item
    await profiles.get(PreferencesKey(user_id=1))  # E: arg-type


async def raw_strings() -> None:
    profiles = StringRepository(ProfileKey)
    await profiles.get("app:profile:1")  # E: arg-type
    await profiles.delete("app:profile:1")  # E: arg-type
    await profiles.get(ProfileKey(user_id=1).render())  # E: arg-type
    await profiles.get(ProfileKey)  # E: arg-type
    await profiles.get_many(["app:profile:1"])  # E: list-item


async def wrong_values() -> None:
    profiles = StringRepository(ProfileKey)
    key = ProfileKey(user_id=1)
    await profiles.set(key, Preferences())  # E: arg-type
    await profiles.set(key, {"name": "Ada"})  # E: arg-type
    await profiles.set(key, None)  # E: arg-type
    await profiles.set_many({key: "Ada"})  # E: dict-item
    prefs = HashRepository(PreferencesKey)
    await prefs.set(PreferencesKey(user_id=1), {"theme": "dark"})  # E: arg-type
    await prefs.set(PreferencesKey(user_id=1), Profile(name="Ada"))  # E: arg-type


async def ttls() -> None:
    profiles = StringRepository(ProfileKey)
    key = ProfileKey(user_id=1)
    await profiles.set(key, Profile(name="Ada"), ttl=60)  # an int is fine
    await profiles.set(key, Profile(name="Ada"), ttl=None)  # None: the schema's TTL
    await profiles.set(key, Profile(name="Ada"), ttl="60")  # E: arg-type
    await profiles.set(key, Profile(name="Ada"), ttl=1.5)  # E: arg-type
    await profiles.set_many({key: Profile(name="Ada")}, ttl="60")  # E: arg-type


async def optional_results() -> None:
    profiles = StringRepository(ProfileKey)
    profile = await profiles.get(ProfileKey(user_id=1))
    profile.name  # E: union-attr
    name: str = (await profiles.get(ProfileKey(user_id=1))).name  # E: union-attr
    sure: Profile = await profiles.get(ProfileKey(user_id=1))  # E: assignment
    prefs = await HashRepository(PreferencesKey).get(PreferencesKey(user_id=1))
    prefs.theme  # E: union-attr


async def forgotten_await() -> None:
    profiles = StringRepository(ProfileKey)
    key = ProfileKey(user_id=1)
    profile = profiles.get(key)
    if profile is not None:
        profile.name  # E: attr-defined
    profiles.set(key, Profile(name="Ada"))  # E: unused-coroutine
    stored: bool = profiles.exists(key)  # E: assignment


async def sync_twin_awaited() -> None:
    profiles = SyncStringRepository(ProfileKey)
    await profiles.get(ProfileKey(user_id=1))  # E: misc


def wrong_schema_for_repository() -> None:
    StringRepository(PreferencesKey)  # E: type-var, arg-type
    HashRepository(ProfileKey)  # E: type-var, arg-type
    StringRepository(ProfileKey(user_id=1))  # E: arg-type
    StringRepository[ProfileKey, Preferences](ProfileKey)  # E: arg-type
    pinned: StringRepository[ProfileKey, Profile] = StringRepository(AccountKey)  # E: arg-type
    other = StringRepository(AccountKey)
    again: StringRepository[ProfileKey, Profile] = other  # E: assignment
