"""@cached in the demo: one computation for concurrent calls, the counters, invalidation."""

from __future__ import annotations

import asyncio

from .._cached import cached
from .._ttl import TTL
from ._narration import either, heading, note, show, times

__all__ = ["cached_demo"]


async def cached_demo() -> None:
    heading("@cached (L1 in process over Redis L2, one computation per key)")
    calls: list[str] = []

    @cached(ttl=TTL.AI_RESPONSE, namespace="demo:answer")
    async def answer(prompt: str, temperature: float = 0.0) -> dict[str, str]:
        calls.append(prompt)
        return {"prompt": prompt, "answer": prompt[::-1]}

    first = await asyncio.gather(*(answer("what is redis?") for _ in range(5)))
    show(
        "5 concurrent answer('what is redis?')",
        first[0],
        f"the function ran {times(len(calls))}: the other calls got its result",
    )
    await answer(prompt="what is redis?", temperature=0.0)
    show(
        "answer(prompt=..., temperature=0.0)",
        f"computed {times(len(calls))} so far",
        "the same arguments bound by name: the same key, so no new computation",
    )
    info = answer.cache_info()
    show("answer.cache_info()", info)
    note("l1_hits: calls answered from this process's memory; l2_hits: from Redis;")
    note("misses: calls that ran the function; errors: Redis calls that failed (the call")
    note("still returned the value); l1_size: entries in memory, one per call shape (by")
    note(f"position, by name); coherence: how L1 learns of writes elsewhere ({info.coherence!r}).")
    dropped = await answer.invalidate("what is redis?")
    show(
        "answer.invalidate('what is redis?')",
        dropped,
        either(
            dropped,
            "dropped from L1 and from Redis",
            "dropped from L1; False: no entry in Redis was deleted (Redis failed)",
        ),
    )
    await answer("what is redis?")
    show("answer('what is redis?') again", f"computed {times(len(calls))} so far")
    note("the entry was gone, so the function ran once more")
    await answer.invalidate("what is redis?")  # the demo's clean-up, through the library
