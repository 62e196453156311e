"""Which parameters a web framework fills in (never part of a @cached key), told apart
without importing the framework in the core."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Query, Request, Security
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocket

from arketic_cache._core._cached import CallKeyer


def dependency() -> int:
    return 1


def handler(
    q: str,
    n: Annotated[int, Query()],
    request: Request,
    response: JSONResponse,
    tasks: BackgroundTasks,
    socket: WebSocket,
    dep: Annotated[int, Depends(dependency)],
    sec: Annotated[int, Security(dependency)],
    old_style: int = Depends(dependency),
    plain: Any = None,
) -> None:
    pass


def test_framework_parameters_are_injected() -> None:
    keyer = CallKeyer(handler, namespace=None, key=None, exclude=())
    assert keyer.injected == {"request", "response", "tasks", "socket", "dep", "sec", "old_style"}


def test_injected_parameters_do_not_change_the_key() -> None:
    keyer = CallKeyer(handler, namespace=None, key=None, exclude=())
    base = {"q": "x", "n": 1, "plain": None}
    one = keyer(
        (),
        {
            **base,
            "request": object(),
            "response": 1,
            "tasks": 2,
            "socket": 3,
            "dep": 4,
            "sec": 5,
            "old_style": 6,
        },
    )
    two = keyer(
        (),
        {
            **base,
            "request": object(),
            "response": 7,
            "tasks": 8,
            "socket": 9,
            "dep": 10,
            "sec": 11,
            "old_style": 12,
        },
    )
    assert one == two
    assert (
        keyer(
            (),
            {
                **base,
                "q": "y",
                "request": 0,
                "response": 0,
                "tasks": 0,
                "socket": 0,
                "dep": 0,
                "sec": 0,
                "old_style": 0,
            },
        )
        != one
    )


def test_a_plain_function_has_none() -> None:
    def f(a: int, b: str = "") -> None:
        pass

    assert CallKeyer(f, namespace=None, key=None, exclude=()).injected == frozenset()
    assert list(inspect.signature(f).parameters) == ["a", "b"]  # untouched
