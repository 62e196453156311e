"""Channel schemas: typed pub/sub channels named by templates, like key schemas.

A channel schema names its template and, through its base class, its message model::

    class ChatChannel(Channel[ChatMessage]):
        template = "chat:{chat_id}"
        chat_id: str

    await pubsub.publish(ChatChannel(chat_id="c1"), ChatMessage(...))
    async with pubsub.subscribe(ChatChannel(chat_id="c1")) as messages: ...
    async with pubsub.subscribe(ChatChannel.every()) as messages: ...   # every chat

Parts are escaped as in keys, so a part holding ``* ? [ ] :`` can neither act as a pattern
nor reach another tenant's channel. What a subscription yields is a ``Received`` (the
channel parsed back into its schema, the typed message, the publisher's id and time) or, when
messages may have been lost, a ``Gap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from pydantic import BaseModel

from ._exceptions import KeySchemaError
from ._template import Template, type_argument

__all__ = ["Channel", "ChannelPattern", "Gap", "Received", "Topic"]

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound="Channel[Any]")
C_co = TypeVar("C_co", covariant=True)
M_co = TypeVar("M_co", covariant=True)


class Channel(Template, Generic[M]):
    """Base of every channel schema: set ``template``; the fields are the channel's parts.

    ``Channel[ChatMessage]`` carries ``ChatMessage`` messages. ``every(**fields)`` is the
    pattern of every channel of the schema with ``fields`` fixed (PSUBSCRIBE).
    """

    message_type: ClassVar[type[BaseModel]]

    @classmethod
    def _check_class(cls) -> None:
        message = type_argument(cls)
        if not (isinstance(message, type) and issubclass(message, BaseModel)):
            raise KeySchemaError(
                f"{cls.__name__}: derive from Channel[Model] with a pydantic model, not {message!r}"
            )
        cls.message_type = message

    @classmethod
    def every(cls, **fields: Any) -> ChannelPattern[Self, M]:
        """Every channel of this schema with ``fields`` fixed, the others wildcards.

        Raises:
            InvalidInputError: a name is not a field, or a value does not fit its field.
        """
        return ChannelPattern(cls, cls.pattern(**fields))

    if TYPE_CHECKING:

        def _topic(self) -> tuple[Self, M]: ...


@dataclass(frozen=True, slots=True)
class ChannelPattern(Generic[C, M]):
    """Every channel of ``schema`` matching ``pattern`` (built by ``Channel.every()``)."""

    schema: type[C]
    pattern: str

    if TYPE_CHECKING:

        def _topic(self) -> tuple[C, M]: ...


class Topic(Protocol[C_co, M_co]):
    """What ``subscribe()`` takes: a channel or a ``ChannelPattern``, typed by both."""

    def _topic(self) -> tuple[C_co, M_co]: ...


@dataclass(frozen=True, slots=True)
class Received(Generic[C, M]):
    """A message as received: its channel (parsed), the typed message, and its envelope."""

    channel: C
    message: M
    #: The publisher's unique id for this message (to deduplicate after a ``Gap``).
    id: str
    #: When it was published (the publisher's clock, Unix seconds).
    published_at: float


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages may have been lost here: the connection broke, or the queue overflowed.

    ``reason`` says why; ``missed`` counts the messages dropped when that is known (an
    overflow), and is None when nobody can know (a reconnect). A reader that must not lose
    anything reads the stream that backs the channel from its last id.
    """

    reason: str
    missed: int | None = None
