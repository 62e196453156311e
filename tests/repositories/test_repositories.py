"""Typed repositories over all six Redis types, on fakeredis and a real server, sync and async."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pydantic
import pytest
import redis

from arketic_cache import (
    TTL,
    BackendUnavailable,
    ChatMessagesKey,
    ConfigurationError,
    HashKey,
    HashRepository,
    InvalidInputError,
    JSONRecord,
    ListKey,
    ListRepository,
    RedisConnection,
    SerializationError,
    SetKey,
    SetRepository,
    SortedSetKey,
    SortedSetRepository,
    StreamKey,
    StreamRepository,
    StringKey,
    StringRepository,
    SyncHashRepository,
    SyncListRepository,
    SyncSetRepository,
    SyncSortedSetRepository,
    SyncStreamRepository,
    SyncStringRepository,
    UserPreferencesKey,
)
from arketic_cache._connection import _memory_server

from ..helpers import Bridge, Flavor


class Profile(pydantic.BaseModel):
    name: str
    age: int = 0
    tags: list[str] = []


class ProfileKey(StringKey[Profile]):
    template = "user:{user_id}:profile"
    ttl = TTL.API_RESPONSE
    user_id: int


class OtherProfileKey(StringKey[Profile]):
    template = "other:{user_id}"
    user_id: int


class CounterKey(StringKey[int]):
    template = "counter:{name}"
    name: str


class ProfileHashKey(HashKey[Profile]):
    template = "user:{user_id}:record"
    ttl = TTL.USER_SESSION
    user_id: int


class Message(pydantic.BaseModel):
    text: str
    n: int


class InboxKey(ListKey[Message]):
    template = "inbox:{user_id}"
    ttl = TTL.SEARCH_RESULT
    user_id: int


class TagsKey(SetKey[str]):
    template = "tags:{item}"
    ttl = TTL.API_RESPONSE
    item: str


class BoardKey(SortedSetKey[str]):
    template = "board:{game}"
    ttl = TTL.AI_RESPONSE
    game: str


class EventsKey(StreamKey[Message]):
    template = "events:{topic}"
    ttl = TTL.RATE_LIMIT_WINDOW
    topic: str


def repo(flavor: Flavor, sync_cls: Any, async_cls: Any, schema: Any, **kwargs: Any) -> Any:
    return flavor.wrap(
        sync_cls(schema, flavor.connection, **kwargs),
        async_cls(schema, flavor.connection, **kwargs),
    )


def ttl_near(raw: redis.Redis, key: str, expected: int) -> bool:
    return expected - 10 <= raw.ttl(key) <= expected


class TestString:
    """STRING: a typed JSON value with the schema's TTL."""

    @pytest.fixture
    def profiles(self, flavor: Flavor) -> Any:
        return repo(flavor, SyncStringRepository, StringRepository, ProfileKey)

    def test_round_trip_as_model(self, profiles: Any, raw: redis.Redis) -> None:
        """A model comes back as that model, stored as JSON with the schema's TTL."""
        key = ProfileKey(user_id=1)
        assert profiles.set(key, Profile(name="Ada", tags=["x"])) is True
        assert profiles.get(key) == Profile(name="Ada", tags=["x"])
        assert raw.get("user:1:profile") == '{"name":"Ada","age":0,"tags":["x"]}'
        assert ttl_near(raw, "user:1:profile", 300)
        assert profiles.get(ProfileKey(user_id=2)) is None

    def test_ttl_override_and_validation(self, profiles: Any, raw: redis.Redis) -> None:
        """An explicit TTL replaces the schema's; a bad one is refused before I/O."""
        profiles.set(ProfileKey(user_id=1), Profile(name="A"), ttl=42)
        assert ttl_near(raw, "user:1:profile", 42)
        with pytest.raises(InvalidInputError):
            profiles.set(ProfileKey(user_id=2), Profile(name="A"), ttl=0)

    def test_wrong_value_type_refused(self, profiles: Any, raw: redis.Redis) -> None:
        """A value that is not the declared type raises SerializationError and writes nothing."""
        with pytest.raises(SerializationError):
            profiles.set(ProfileKey(user_id=1), {"name": "Ada"})
        assert raw.exists("user:1:profile") == 0

    def test_foreign_key_refused(self, profiles: Any) -> None:
        """A key of another schema is refused at run time too."""
        with pytest.raises(InvalidInputError, match="ProfileKey"):
            profiles.get(OtherProfileKey(user_id=1))

    @pytest.mark.parametrize("stored", ['{"age": 3}', "not json", '"a string"'])
    def test_invalid_stored_value_is_miss(
        self, profiles: Any, raw: redis.Redis, stored: str
    ) -> None:
        """Stored data that does not fit the model is a miss, deleted and counted."""
        raw.set("user:1:profile", stored)
        assert profiles.get(ProfileKey(user_id=1)) is None
        assert raw.exists("user:1:profile") == 0
        assert profiles.stats()["decode_errors"] == 1

    def test_many(self, profiles: Any, raw: redis.Redis) -> None:
        """set_many and get_many each take one round trip and key results by key object."""
        items = {ProfileKey(user_id=i): Profile(name=f"u{i}") for i in range(5)}
        assert profiles.set_many(items) is True
        assert all(ttl_near(raw, f"user:{i}:profile", 300) for i in range(5))
        found = profiles.get_many([*items, ProfileKey(user_id=99)])
        assert found == items

    def test_scalar_values_and_default_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Non-model values validate too; TTL.DEFAULT follows the connection's default TTL."""
        flavor.connect(default_ttl=1234)
        counters = repo(flavor, SyncStringRepository, StringRepository, CounterKey)
        counters.set(CounterKey(name="a"), 5)
        assert counters.get(CounterKey(name="a")) == 5
        assert ttl_near(raw, "counter:a", 1234)

    def test_key_prefix(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The connection's key prefix applies to repository keys."""
        flavor.connect(key_prefix="app:")
        profiles = repo(flavor, SyncStringRepository, StringRepository, ProfileKey)
        profiles.set(ProfileKey(user_id=1), Profile(name="A"))
        assert raw.exists("app:user:1:profile") == 1
        assert profiles.exists(ProfileKey(user_id=1)) is True
        assert profiles.delete(ProfileKey(user_id=1)) is True
        assert raw.exists("app:user:1:profile") == 0


class TestHash:
    """HASH: a model's fields as hash fields, replaced or updated atomically with the TTL."""

    @pytest.fixture
    def records(self, flavor: Flavor) -> Any:
        return repo(flavor, SyncHashRepository, HashRepository, ProfileHashKey)

    def test_round_trip(self, records: Any, raw: redis.Redis) -> None:
        """Each field is its own JSON value; the record comes back as the model."""
        key = ProfileHashKey(user_id=1)
        assert records.set(key, Profile(name="Bo", age=3, tags=["a"])) is True
        assert raw.hgetall("user:1:record") == {"name": '"Bo"', "age": "3", "tags": '["a"]'}
        assert ttl_near(raw, "user:1:record", 3600)
        assert records.get(key) == Profile(name="Bo", age=3, tags=["a"])
        assert records.get(ProfileHashKey(user_id=2)) is None

    def test_set_replaces_old_fields(self, records: Any, raw: redis.Redis) -> None:
        """set replaces the whole record: a stale field does not survive."""
        raw.hset("user:1:record", mapping={"stale": "1"})
        records.set(ProfileHashKey(user_id=1), Profile(name="Bo"))
        assert "stale" not in raw.hgetall("user:1:record")

    def test_update(self, records: Any, raw: redis.Redis) -> None:
        """update sets validated fields of an existing record and refreshes its TTL."""
        key = ProfileHashKey(user_id=1)
        records.set(key, Profile(name="Bo"))
        raw.expire("user:1:record", 5)
        assert records.update(key, {"age": 41}) is True
        assert records.get_field(key, "age") == 41
        assert ttl_near(raw, "user:1:record", 3600)
        assert records.get(key) == Profile(name="Bo", age=41)

    def test_update_refuses_bad_fields(self, records: Any) -> None:
        """Unknown fields and values of the wrong type are refused before any I/O."""
        key = ProfileHashKey(user_id=1)
        with pytest.raises(InvalidInputError, match="no field"):
            records.update(key, {"nickname": "x"})
        with pytest.raises(InvalidInputError, match="age"):
            records.update(key, {"age": "not a number"})
        with pytest.raises(InvalidInputError):
            records.get_field(key, "nickname")

    def test_update_missing_record(self, records: Any, raw: redis.Redis) -> None:
        """A partial update never creates a record without its other fields."""
        assert records.update(ProfileHashKey(user_id=9), {"age": 1}) is False
        assert raw.exists("user:9:record") == 0

    def test_open_record_accepts_any_field(self, flavor: Flavor) -> None:
        """The catalogue's JSONRecord hashes keep whatever fields they are given."""
        prefs = repo(flavor, SyncHashRepository, HashRepository, UserPreferencesKey)
        key = UserPreferencesKey(user_id=7)
        prefs.set(key, JSONRecord(theme="dark"))
        assert prefs.update(key, {"lang": "fr"}) is True
        assert prefs.get(key).model_dump() == {"theme": "dark", "lang": "fr"}

    def test_invalid_record_is_miss(self, records: Any, raw: redis.Redis) -> None:
        """A hash that no longer fits the model (field missing or not JSON) is dropped."""
        raw.hset("user:1:record", mapping={"age": "3"})
        raw.hset("user:2:record", mapping={"name": "not-json"})
        assert records.get(ProfileHashKey(user_id=1)) is None
        assert records.get_field(ProfileHashKey(user_id=2), "name") is None
        assert raw.exists("user:1:record", "user:2:record") == 0

    def test_get_many(self, records: Any) -> None:
        """get_many returns the records found, in one round trip."""
        records.set(ProfileHashKey(user_id=1), Profile(name="a"))
        found = records.get_many([ProfileHashKey(user_id=1), ProfileHashKey(user_id=2)])
        assert found == {ProfileHashKey(user_id=1): Profile(name="a")}


class TestList:
    """LIST: typed members, capped pushes, TTL refreshed by writes."""

    @pytest.fixture
    def inbox(self, flavor: Flavor) -> Any:
        return repo(flavor, SyncListRepository, ListRepository, InboxKey)

    def test_push_pop_range(self, inbox: Any, raw: redis.Redis) -> None:
        """Members come back typed, in order; the TTL is the schema's."""
        key = InboxKey(user_id=1)
        assert inbox.push(key, Message(text="a", n=1), Message(text="b", n=2)) == 2
        assert inbox.push_front(key, Message(text="z", n=0)) == 3
        assert [m.text for m in inbox.range(key)] == ["z", "a", "b"]
        assert ttl_near(raw, "inbox:1", 900)
        assert inbox.pop(key) == Message(text="z", n=0)
        assert inbox.pop_back(key) == Message(text="b", n=2)
        assert inbox.length(key) == 1
        assert inbox.pop(InboxKey(user_id=2)) is None

    def test_capped_push_keeps_newest(self, inbox: Any) -> None:
        """max_length keeps the newest members, in the same step as the push."""
        key = InboxKey(user_id=1)
        for n in range(10):
            inbox.push(key, Message(text="m", n=n), max_length=3)
        assert [m.n for m in inbox.range(key)] == [7, 8, 9]
        assert inbox.trim(key, 0, 0) is True
        assert [m.n for m in inbox.range(key)] == [7]

    def test_write_refreshes_ttl(self, inbox: Any, raw: redis.Redis) -> None:
        """Every collection write resets the TTL."""
        key = InboxKey(user_id=1)
        inbox.push(key, Message(text="a", n=1))
        raw.expire("inbox:1", 5)
        inbox.push(key, Message(text="b", n=2))
        assert ttl_near(raw, "inbox:1", 900)

    def test_bad_members(self, inbox: Any, raw: redis.Redis) -> None:
        """Wrong types are refused at push; a corrupt stored member is a clear error."""
        key = InboxKey(user_id=1)
        with pytest.raises(SerializationError):
            inbox.push(key, {"text": 1})
        with pytest.raises(InvalidInputError):
            inbox.push(key)
        raw.rpush("inbox:1", "garbage")
        with pytest.raises(SerializationError, match="inbox:1"):
            inbox.range(key)

    def test_catalogue_chat_messages(self, flavor: Flavor) -> None:
        """The spec's recent-chat-messages use: capped at N."""
        chats = repo(flavor, SyncListRepository, ListRepository, ChatMessagesKey)
        key = ChatMessagesKey(chat_id=456)
        for i in range(60):
            chats.push(key, {"i": i}, max_length=50)
        assert chats.length(key) == 50
        assert chats.range(key, -1, -1) == [{"i": 59}]


class TestSet:
    """SET: typed members with the TTL."""

    @pytest.fixture
    def tags(self, flavor: Flavor) -> Any:
        return repo(flavor, SyncSetRepository, SetRepository, TagsKey)

    def test_members(self, tags: Any, raw: redis.Redis) -> None:
        """add, contains, remove, size and members behave as a set."""
        key = TagsKey(item="x")
        assert tags.add(key, "red", "blue", "red") == 2
        assert tags.add(key, "red") == 0
        assert sorted(tags.members(key)) == ["blue", "red"]
        assert tags.contains(key, "red") is True
        assert tags.contains(key, "green") is False
        assert tags.remove(key, "red", "green") == 1
        assert tags.size(key) == 1
        assert ttl_near(raw, "tags:x", 300)

    def test_corrupt_member(self, tags: Any, raw: redis.Redis) -> None:
        """A stored member that is not JSON of the declared type is a clear error."""
        raw.sadd("tags:x", "5")
        with pytest.raises(SerializationError):
            tags.members(TagsKey(item="x"))


class TestSortedSet:
    """ZSET: typed members with float scores."""

    @pytest.fixture
    def board(self, flavor: Flavor) -> Any:
        return repo(flavor, SyncSortedSetRepository, SortedSetRepository, BoardKey)

    def test_ranges(self, board: Any, raw: redis.Redis) -> None:
        """Ranks and scores, ascending and descending, paged."""
        key = BoardKey(game="g")
        assert board.add(key, "ann", 10) == 1
        assert board.add_many(key, [("bob", 5), ("cy", 20.5)]) == 2
        assert board.range_by_rank(key) == [("bob", 5.0), ("ann", 10.0), ("cy", 20.5)]
        assert board.range_by_rank(key, 0, 0, desc=True) == [("cy", 20.5)]
        assert board.range_by_score(key, 6, 100) == [("ann", 10.0), ("cy", 20.5)]
        assert board.range_by_score(key, desc=True, offset=1, count=1) == [("ann", 10.0)]
        assert board.increment(key, "bob", 10) == 15.0
        assert board.score(key, "bob") == 15.0
        assert board.score(key, "nobody") is None
        assert board.remove(key, "ann") == 1
        assert board.size(key) == 2
        assert ttl_near(raw, "board:g", 3600)

    @pytest.mark.parametrize("score", [float("nan"), "1", None], ids=repr)
    def test_bad_scores(self, board: Any, score: Any) -> None:
        """Scores must be numbers."""
        with pytest.raises(InvalidInputError):
            board.add(BoardKey(game="g"), "ann", score)


class TestStream:
    """STREAM: typed entries, capped appends, reading after an id."""

    @pytest.fixture
    def events(self, flavor: Flavor) -> Any:
        return repo(flavor, SyncStreamRepository, StreamRepository, EventsKey)

    def test_append_and_read(self, events: Any, raw: redis.Redis) -> None:
        """Entries come back typed with their ids; read_after returns only newer ones."""
        key = EventsKey(topic="t")
        first = events.append(key, Message(text="a", n=1))
        second = events.append(key, Message(text="b", n=2))
        assert [m.text for _, m in events.range(key)] == ["a", "b"]
        assert events.read_after(key, first) == [(second, Message(text="b", n=2))]
        assert events.read_after(key, second) == []
        assert events.range(key, count=1) == [(first, Message(text="a", n=1))]
        assert events.length(key) == 2
        assert ttl_near(raw, "events:t", 60)

    def test_latest(self, events: Any) -> None:
        """The last entries come oldest first; count may exceed the length; bad counts fail."""
        key = EventsKey(topic="t")
        assert events.latest(key, 3) == []
        ids = [events.append(key, Message(text="m", n=n)) for n in range(5)]
        assert events.latest(key, 2) == [
            (ids[3], Message(text="m", n=3)),
            (ids[4], Message(text="m", n=4)),
        ]
        assert [m.n for _, m in events.latest(key, 50)] == [0, 1, 2, 3, 4]
        with pytest.raises(InvalidInputError, match="count"):
            events.latest(key, 0)

    def test_exact_cap(self, events: Any) -> None:
        """With approximate=False the stream keeps exactly max_length entries."""
        key = EventsKey(topic="t")
        for n in range(10):
            events.append(key, Message(text="m", n=n), max_length=3, approximate=False)
        assert [m.n for _, m in events.range(key)] == [7, 8, 9]

    def test_corrupt_entry(self, events: Any, raw: redis.Redis) -> None:
        """An entry that does not fit the model is a clear error."""
        raw.xadd("events:t", {"text": '"x"'})
        with pytest.raises(SerializationError, match="events:t"):
            events.range(EventsKey(topic="t"))


class TestConstruction:
    """A repository refuses a schema of the wrong kind, an abstract one, or a non-model hash."""

    def test_wrong_kind(self) -> None:
        """A SET schema cannot back a STRING repository."""
        with pytest.raises(ConfigurationError, match="StringKey"):
            SyncStringRepository(TagsKey)  # type: ignore[arg-type, type-var]

    def test_abstract_schema(self) -> None:
        """The typed base itself has no template."""
        with pytest.raises(ConfigurationError, match="template"):
            SyncStringRepository(StringKey)  # type: ignore[arg-type]

    def test_hash_of_non_model(self) -> None:
        """A hash schema must hold a pydantic model."""

        class Bad(HashKey[Any]):
            template = "bad:{x}"
            x: int

        with pytest.raises(ConfigurationError, match="pydantic model"):
            SyncHashRepository(Bad)


@pytest.mark.parametrize("flavor_name", ["sync", "async"])
def test_degrades_like_the_cache(flavor_name: str) -> None:
    """With Redis gone, every repository returns defaults; strict ones raise."""
    url = f"memory://repo-{uuid.uuid4().hex}"
    conn = RedisConnection(url=url, breaker_threshold=1000)
    _memory_server(url).connected = False
    with asyncio.Runner() as runner:

        def make(sync_cls: Any, async_cls: Any, schema: Any, **kw: Any) -> Any:
            if flavor_name == "sync":
                return sync_cls(schema, conn, **kw)
            return Bridge(async_cls(schema, conn, **kw), runner)

        strings = make(SyncStringRepository, StringRepository, ProfileKey)
        assert strings.get(ProfileKey(user_id=1)) is None
        assert strings.set(ProfileKey(user_id=1), Profile(name="a")) is False
        assert strings.get_many([ProfileKey(user_id=1)]) == {}
        hashes = make(SyncHashRepository, HashRepository, ProfileHashKey)
        assert hashes.get(ProfileHashKey(user_id=1)) is None
        assert hashes.update(ProfileHashKey(user_id=1), {"age": 1}) is False
        lists = make(SyncListRepository, ListRepository, InboxKey)
        assert lists.push(InboxKey(user_id=1), Message(text="a", n=1)) == 0
        assert lists.range(InboxKey(user_id=1)) == []
        sets = make(SyncSetRepository, SetRepository, TagsKey)
        assert sets.members(TagsKey(item="x")) == []
        assert sets.contains(TagsKey(item="x"), "a") is False
        zsets = make(SyncSortedSetRepository, SortedSetRepository, BoardKey)
        assert zsets.range_by_rank(BoardKey(game="g")) == []
        assert zsets.increment(BoardKey(game="g"), "a") is None
        streams = make(SyncStreamRepository, StreamRepository, EventsKey)
        assert streams.append(EventsKey(topic="t"), Message(text="a", n=1)) is None
        assert streams.read_after(EventsKey(topic="t")) == []
        assert conn.state.errors == 13
        strict = make(SyncStringRepository, StringRepository, ProfileKey, strict=True)
        with pytest.raises(BackendUnavailable):
            strict.get(ProfileKey(user_id=1))
        _memory_server(url).connected = True
        runner.run(conn.aclose())


def test_value_type_without_json_form_is_configuration_error() -> None:
    """A value type pydantic cannot handle is refused when the repository is built."""

    class LockKey(StringKey[threading.Lock]):
        template = "lock:{name}"
        name: str

    with pytest.raises(ConfigurationError, match="JSON"):
        SyncStringRepository(LockKey)
