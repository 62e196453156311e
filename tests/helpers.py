"""Shared test machinery: the object bridge, flavours, the harness' binary lookup, flow stepping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arketic_cache._core._effects import Flow


def step(flow: Flow[Any], replies: list[Any]) -> tuple[list[Any], Any]:
    """Run ``flow`` feeding ``replies`` in order; return the effects it yielded and its result."""
    effects: list[Any] = []
    reply: Any = None
    feed = iter(replies)
    try:
        while True:
            effects.append(flow.send(reply))
            reply = next(feed)
    except StopIteration as stop:
        return effects, stop.value


def drive(flow: Flow[Any], respond: Callable[[Any], Any]) -> Any:
    """Run ``flow`` answering each effect with ``respond(effect)``; return its result."""
    reply: Any = None
    try:
        while True:
            reply = respond(flow.send(reply))
    except StopIteration as stop:
        return stop.value
