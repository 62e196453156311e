"""@cached on a path operation: the request, the response, background tasks and injected
dependencies stay out of the key; the query parameters are the key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Request, Response

from arketic_cache import cached
from arketic_cache.fastapi import CacheDep

from .helpers import make_app, run, serve

computed: list[str] = []


def tenant_header(request: Request) -> str:
    return request.headers.get("x-trace", "")


@cached(ttl=60)
async def answer(
    prompt: str,
    request: Request,
    response: Response,
    tasks: BackgroundTasks,
    cache: CacheDep,
    trace: Annotated[str, Depends(tenant_header)],
) -> dict[str, Any]:
    computed.append(prompt)
    return {"answer": prompt.upper()}


def test_only_the_data_enters_the_key(backend_url: str) -> None:
    computed.clear()
    misses = answer.cache_info().misses
    app = make_app(backend_url)
    app.get("/answer")(answer)

    async def scenario() -> list[Any]:
        async with serve(app) as http:
            return [
                (await http.get("/answer", params={"prompt": p}, headers={"x-trace": t})).json()
                for p, t in (("hi", "1"), ("hi", "2"), ("yo", "1"), ("hi", "3"))
            ]

    assert run(scenario) == [{"answer": "HI"}, {"answer": "HI"}, {"answer": "YO"}, {"answer": "HI"}]
    assert computed == ["hi", "yo"]
    assert answer.cache_info().misses - misses == 2
