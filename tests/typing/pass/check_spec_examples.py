"""The spec's usage examples ("Common Use Cases", "Batch Operations"), on the typed API."""

from __future__ import annotations

from typing import Any, assert_type

from arketic_cache import (
    AIResponseKey,
    StringRepository,
    UserProfileKey,
    cache,
    get_redis,
    stable_hash,
)
from tests.typing.typing_fixtures import AIAnswer, AIAnswerKey


async def generate_ai_response(prompt: str) -> str:
    return prompt.upper()


async def generate_ai_answer(prompt: str) -> AIAnswer:
    return AIAnswer(text=prompt.upper(), tokens=len(prompt))


# -- "2. AI Response Caching", as the spec writes it ---------------------------------------------
async def ai_response_caching(prompt: str) -> Any:
    prompt_hash = stable_hash(prompt)
    cache_key = f"ai:response:{prompt_hash}"
    cached = await cache.get(cache_key)
    assert_type(cached, Any)
    if not cached:
        response = await generate_ai_response(prompt)
        stored = await cache.set(cache_key, response, ttl=3600)
        assert_type(stored, bool)
        return response
    return cached


# -- the same through the catalogue key: the key is rendered, the TTL comes from its schema ------
async def ai_response_caching_with_catalogue_key(prompt: str) -> Any:
    responses = StringRepository(AIResponseKey)
    key = AIResponseKey(prompt_hash=stable_hash(prompt))
    cached = await responses.get(key)
    assert_type(cached, Any | None)  # the catalogue leaves AI responses open: StringKey[Any]
    if cached is None:
        response = await generate_ai_response(prompt)
        await responses.set(key, response)  # TTL.AI_RESPONSE (3600 s) from the schema
        return response
    return cached


# -- and with an application schema that fixes the value type ------------------------------------
async def ai_response_caching_typed(prompt: str) -> AIAnswer:
    answers = StringRepository(AIAnswerKey)
    key = AIAnswerKey(prompt_hash=stable_hash({"prompt": prompt, "model": "m-1"}))
    cached = await answers.get(key)
    assert_type(cached, AIAnswer | None)
    if cached is None:
        answer = await generate_ai_answer(prompt)
        await answers.set(key, answer)
        return answer
    assert_type(cached, AIAnswer)
    return cached


# -- "2. Batch Operations": a raw pipeline from get_redis() ----------------------------------------
async def batch_get_users(user_ids: list[int]) -> list[Any]:
    redis = get_redis()
    pipe = redis.pipeline()
    for user_id in user_ids:
        pipe.get(UserProfileKey(user_id=user_id).render())
    results = await pipe.execute()
    assert_type(results, list[Any])
    return results


# -- the same batch through the repository: one round trip, typed results ------------------------
async def batch_get_users_typed(user_ids: list[int]) -> dict[UserProfileKey, dict[str, Any]]:
    users = StringRepository(UserProfileKey)
    found = await users.get_many(UserProfileKey(user_id=user_id) for user_id in user_ids)
    assert_type(found, dict[UserProfileKey, dict[str, Any]])
    return found


# -- "4. Real-time Features": publish and subscribe on the raw client ----------------------------
async def publish_chat_message(chat_id: str, message_data: str) -> None:
    redis = get_redis()
    # redis-py's own annotations: an int from 8.0 on, Any before (both supported).
    receivers: int = await redis.publish(f"chat:{chat_id}", message_data)
    assert receivers >= 0
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"chat:{chat_id}")
