"""What a flow may ask a driver to do: plain data, no behaviour.

A flow is a generator that yields effects, receives each reply and returns its result.
The sync and async drivers in ``_drive.py`` are the only code that carries effects out.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from .._lua import LuaScript

__all__ = [
    "Arg",
    "Batch",
    "Command",
    "Effect",
    "Eval",
    "Flow",
    "OnNode",
    "Operation",
    "describe",
    "keys_of",
]

T = TypeVar("T")

Arg: TypeAlias = str | bytes | int | float


@dataclass(frozen=True, slots=True)
class Command:
    """Run one Redis command.

    No effect is ever re-sent after a failure, so a write can never apply twice.
    ``errors_as_reply`` hands a failure to the flow as a ``BackendError`` reply instead of
    aborting it (the breaker still sees transport failures).
    """

    args: tuple[Arg, ...]
    errors_as_reply: bool = False


@dataclass(frozen=True, slots=True)
class Eval:
    """Run a Lua script by SHA, sending its source only when Redis answers NOSCRIPT."""

    script: LuaScript
    keys: tuple[str, ...]
    args: tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Run several commands in one round trip; ``transaction`` wraps them in MULTI/EXEC.

    The reply is the list of the commands' replies, in order.
    """

    commands: tuple[Command, ...]
    transaction: bool = False


@dataclass(frozen=True, slots=True)
class OnNode:
    """Run a command on one cluster node, ``host:port`` (health reads every node); a failure,
    the node unreachable included, is the reply (a ``BackendError``). Cluster drivers only."""

    node: tuple[str, int]
    command: Command


Effect: TypeAlias = Command | Eval | Batch | OnNode
Flow: TypeAlias = Generator[Effect, Any, T]


def keys_of(effect: Effect) -> tuple[str, ...]:
    """The keys an effect names, for messages: a script's KEYS, else each command's first
    argument (the key of every data command this package sends)."""
    if type(effect) is Eval:
        return effect.keys
    if type(effect) is OnNode:
        return keys_of(effect.command)
    commands = effect.commands if type(effect) is Batch else (effect,)
    return tuple(_text(c.args[1]) for c in commands if type(c) is Command and len(c.args) > 1)


def _text(arg: Arg) -> str:
    return arg.decode("utf-8", "backslashreplace") if isinstance(arg, bytes) else str(arg)


@dataclass(frozen=True, slots=True)
class Operation:
    """What an effect does, as tracing names it: never a key or a value."""

    name: str  #: the command (``GET``, ``EVALSHA``), or ``PIPELINE``/``MULTI`` for a batch
    procedure: str | None = None  #: the Lua script's name
    batch_size: int | None = None  #: the number of commands of a batch

    @property
    def summary(self) -> str:
        """A span name: ``GET``, ``EVALSHA rate_limit``, ``PIPELINE``."""
        return self.name if self.procedure is None else f"{self.name} {self.procedure}"


def describe(effect: Effect) -> Operation:
    """The operation an effect performs."""
    if isinstance(effect, Eval):
        return Operation("EVALSHA", effect.script.name)
    if isinstance(effect, OnNode):
        return describe(effect.command)
    if isinstance(effect, Batch):
        if len(effect.commands) == 1 and not effect.transaction:
            return describe(effect.commands[0])
        name = "MULTI" if effect.transaction else "PIPELINE"
        return Operation(name, batch_size=len(effect.commands))
    return Operation(_text(effect.args[0]).upper())
