"""Key schema misuses mypy must reject. Each offending line ends with ``# E: <code>``.

Checked by ``tests/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import (
    HashKey,
    KBEmbeddingKey,
    StreamKey,
    StringKey,
    UserProfileKey,
)
from tests.typing.typing_fixtures import ProfileKey


def fields() -> None:
    ProfileKey()  # E: call-arg
    ProfileKey(user_idd=1)  # E: call-arg
    ProfileKey(user_id=1, tenant="t")  # E: call-arg
    ProfileKey(user_id="1")  # E: arg-type
    ProfileKey(1)  # E: call-arg
    KBEmbeddingKey(doc_id="d", chunk="3")  # E: arg-type
    UserProfileKey(user_id=1.5)  # E: arg-type
    UserProfileKey(user_id=None)  # E: arg-type


def frozen() -> None:
    key = ProfileKey(user_id=1)
    key.user_id = 2  # E: misc


def parsing_and_rendering() -> None:
    ProfileKey.parse(42)  # E: arg-type
    raw: ProfileKey = "app:profile:1"  # E: assignment
    rendered: ProfileKey = ProfileKey(user_id=1).render()  # E: assignment


class NotAModel:
    pass


class HashOfNonModel(HashKey[NotAModel]):  # E: type-var
    template = "bad:hash:{x}"
    x: str


class HashOfInt(HashKey[int]):  # E: type-var
    template = "bad:hash-int:{x}"
    x: str


class StreamOfStr(StreamKey[str]):  # E: type-var
    template = "bad:stream:{x}"
    x: str


class TTLAsSeconds(StringKey[int]):
    template = "bad:ttl:{x}"
    ttl = 60  # E: assignment
    x: str
