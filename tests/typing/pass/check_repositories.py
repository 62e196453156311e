"""STRING and HASH repositories: the types mypy infers from the schema class alone."""

from __future__ import annotations

from typing import Any, assert_type

from arketic_cache import (
    AIResponseKey,
    HashRepository,
    JSONRecord,
    KBDocumentsKey,
    RedisConnection,
    StringRepository,
    SyncHashRepository,
    SyncStringRepository,
    UserPreferencesKey,
    UserProfileKey,
)
from tests.typing.typing_fixtures import (
    Preferences,
    PreferencesKey,
    Profile,
    ProfileKey,
)


async def string_repository() -> None:
    profiles = StringRepository(ProfileKey)
    assert_type(profiles, StringRepository[ProfileKey, Profile])
    assert_type(profiles.schema, type[ProfileKey])
    assert_type(profiles.ttl, int)
    assert_type(profiles.stats(), dict[str, Any])

    key = ProfileKey(user_id=1)
    assert_type(await profiles.set(key, Profile(name="Ada")), bool)
    assert_type(await profiles.set(key, Profile(name="Ada"), ttl=60), bool)
    assert_type(await profiles.set(key, Profile(name="Ada"), ttl=None), bool)
    assert_type(await profiles.get(key), Profile | None)
    assert_type(await profiles.exists(key), bool)
    assert_type(await profiles.delete(key), bool)

    many = await profiles.get_many([key, ProfileKey(user_id=2)])
    assert_type(many, dict[ProfileKey, Profile])
    assert_type(await profiles.set_many({key: Profile(name="Ada")}, ttl=30), bool)

    # The narrowing users write after a get.
    profile = await profiles.get(key)
    if profile is not None:
        assert_type(profile, Profile)
        assert_type(profile.name, str)

    # The keyword arguments of the constructor.
    scoped = StringRepository(ProfileKey, None, key_prefix="tenant-1:", strict=True)
    assert_type(scoped, StringRepository[ProfileKey, Profile])


def sync_string_repository(connection: RedisConnection) -> None:
    profiles = SyncStringRepository(ProfileKey, connection)
    assert_type(profiles, SyncStringRepository[ProfileKey, Profile])

    key = ProfileKey(user_id=1)
    assert_type(profiles.set(key, Profile(name="Ada")), bool)
    assert_type(profiles.get(key), Profile | None)
    assert_type(profiles.get_many([key]), dict[ProfileKey, Profile])
    assert_type(profiles.set_many({key: Profile(name="Ada")}), bool)
    assert_type(profiles.exists(key), bool)
    assert_type(profiles.delete(key), bool)


async def catalogue_string_repositories() -> None:
    users = StringRepository(UserProfileKey)
    assert_type(users, StringRepository[UserProfileKey, dict[str, Any]])
    assert_type(await users.get(UserProfileKey(user_id="42")), dict[str, Any] | None)
    await users.set(UserProfileKey(user_id=42), {"name": "Ada"})

    documents = StringRepository(KBDocumentsKey)
    assert_type(documents, StringRepository[KBDocumentsKey, list[dict[str, Any]]])

    responses = StringRepository(AIResponseKey)
    assert_type(responses, StringRepository[AIResponseKey, Any])


async def hash_repository() -> None:
    prefs = HashRepository(PreferencesKey)
    assert_type(prefs, HashRepository[PreferencesKey, Preferences])

    key = PreferencesKey(user_id=1)
    assert_type(await prefs.set(key, Preferences(theme="dark")), bool)
    assert_type(await prefs.get(key), Preferences | None)
    assert_type(await prefs.update(key, {"theme": "dark"}), bool)
    assert_type(await prefs.get_field(key, "theme"), Any)
    assert_type(await prefs.get_many([key]), dict[PreferencesKey, Preferences])
    assert_type(await prefs.exists(key), bool)
    assert_type(await prefs.delete(key), bool)

    catalogue = HashRepository(UserPreferencesKey)
    assert_type(catalogue, HashRepository[UserPreferencesKey, JSONRecord])


def sync_hash_repository() -> None:
    prefs = SyncHashRepository(PreferencesKey)
    assert_type(prefs, SyncHashRepository[PreferencesKey, Preferences])

    key = PreferencesKey(user_id=1)
    assert_type(prefs.set(key, Preferences()), bool)
    assert_type(prefs.get(key), Preferences | None)
    assert_type(prefs.update(key, {"language": "fr"}), bool)
    assert_type(prefs.get_field(key, "language"), Any)
    assert_type(prefs.get_many([key]), dict[PreferencesKey, Preferences])
    assert_type(prefs.exists(key), bool)
    assert_type(prefs.delete(key), bool)
