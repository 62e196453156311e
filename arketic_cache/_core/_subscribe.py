"""The subscriber protocol without I/O: what to send on connect, what a frame means, when to
PING, when the server counts as gone, and how long to back off.

A subscriber connection carries two kinds of traffic: pub/sub messages (RESP2 arrays, RESP3
push frames) and, with ``CLIENT TRACKING ... REDIRECT <own id> BCAST``, key invalidations
(RESP2: messages on ``__redis__:invalidate``; RESP3: ``invalidate`` push frames). ``classify``
turns either protocol's frame into one event type. ``handshake`` is a flow-like plan the
thread and task twins in ``_subscribe.py`` run on a fresh connection; the steps at the end are
what a subscription's life (written once, in ``_subscribe.py``) asks those twins to perform.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

__all__ = [
    "NOTHING",
    "TRACKING_CHANNEL",
    "Close",
    "Confirm",
    "Connect",
    "Event",
    "Heartbeat",
    "Invalidation",
    "Life",
    "Message",
    "Pause",
    "Pong",
    "Read",
    "Refused",
    "Release",
    "Reply",
    "Send",
    "Step",
    "Subscribed",
    "Topics",
    "Write",
    "amendable",
    "amended",
    "amendment",
    "classify",
    "covering",
    "handshake",
    "reconnect_delay",
]

#: Where Redis sends redirected invalidations for a RESP2 client.
TRACKING_CHANNEL = "__redis__:invalidate"


@dataclass(frozen=True, slots=True)
class Topics:
    """What one subscriber connection listens to.

    ``tracking``: key prefixes for server-assisted invalidation (``""`` means every key), or
    None for none. ``fallback`` channels are subscribed only when tracking is unavailable.
    """

    channels: frozenset[str] = frozenset()
    patterns: frozenset[str] = frozenset()
    tracking: frozenset[str] | None = None
    fallback: frozenset[str] = frozenset()


def covering(prefixes: Iterable[str]) -> tuple[str, ...]:
    """The fewest prefixes that match the same keys (Redis refuses overlapping ones)."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not any(prefix.startswith(shorter) for shorter in kept):
            kept.append(prefix)
    return tuple(kept)


# -- frames -----------------------------------------------------------------------------------
class Invalidation(NamedTuple):
    """Keys some client changed, expired or evicted; None: the database was flushed."""

    keys: tuple[str, ...] | None


class Message(NamedTuple):
    """A pub/sub message (``pattern`` set for a PSUBSCRIBE match)."""

    channel: str
    data: str
    pattern: str | None = None


class Confirm(NamedTuple):
    """A (p)subscribe or (p)unsubscribe confirmation."""

    kind: str
    name: str
    subscriptions: int


class Pong(NamedTuple):
    """The answer to our PING."""


class Reply(NamedTuple):
    """Any other reply (to CLIENT ID, CLIENT TRACKING, ...), errors included."""

    value: Any


Event: TypeAlias = Invalidation | Message | Confirm | Pong | Reply

_CONFIRMS = frozenset({"subscribe", "psubscribe", "unsubscribe", "punsubscribe"})


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _keys(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return tuple(_text(key) for key in value)
    return (_text(value),)


def classify(frame: Any) -> Event:
    """What a frame read from a subscriber connection is, on RESP2 or RESP3."""
    if isinstance(frame, list) and frame:
        kind = _text(frame[0]).lower() if isinstance(frame[0], str | bytes) else ""
        if kind == "invalidate" and len(frame) == 2:
            return Invalidation(_keys(frame[1]))
        if kind == "message" and len(frame) == 3:
            channel = _text(frame[1])
            if channel == TRACKING_CHANNEL:
                return Invalidation(_keys(frame[2]))
            return Message(channel, _text(frame[2]))
        if kind == "pmessage" and len(frame) == 4:
            return Message(_text(frame[2]), _text(frame[3]), _text(frame[1]))
        if kind in _CONFIRMS and len(frame) == 3 and isinstance(frame[2], int):
            return Confirm(kind, _text(frame[1]), frame[2])
        if kind == "pong":
            return Pong()
    if isinstance(frame, str | bytes) and _text(frame).upper() == "PONG":
        return Pong()
    return Reply(frame)


# -- the handshake ------------------------------------------------------------------------------
class Send(NamedTuple):
    """Send one command and collect ``replies`` answers to it (confirmations or replies)."""

    args: tuple[str | int, ...]
    replies: int = 1


class Subscribed(NamedTuple):
    """A connection listening: with tracking or without, on these channels and patterns."""

    tracking: bool
    topics: Topics


class Refused(Exception):
    """The server refused a subscription (an ACL without the permission): back off."""


def _refusal(reply: Any) -> str | None:
    """Why an error reply (NOPERM, unknown command) refused a step; None for any other reply."""
    return f"{type(reply).__name__}: {reply}" if isinstance(reply, Exception) else None


def handshake(topics: Topics, resp3: bool) -> Generator[Send, list[Any], Subscribed]:
    """The commands that make a fresh connection listen to ``topics``.

    Each ``Send`` receives the list of its answers (an error reply as an exception object).
    Tracking that the server refuses (an old server, fakeredis, an ACL without CLIENT, or on
    RESP2 without permission for the tracking channel) falls back to the ``fallback``
    channels. Raises ``Refused`` when the channels themselves are refused.
    """
    tracking = False
    if topics.tracking is not None:
        (client_id,) = yield Send(("CLIENT", "ID"))
        if not _refusal(client_id):
            prefixes = covering(topics.tracking)
            args: list[str | int] = ["CLIENT", "TRACKING", "ON", "REDIRECT", int(client_id)]
            args.append("BCAST")
            if "" not in prefixes:
                for prefix in prefixes:
                    args += ["PREFIX", prefix]
            (on,) = yield Send(tuple(args))
            tracking = not _refusal(on)
            if tracking and not resp3:
                (joined,) = yield Send(("SUBSCRIBE", TRACKING_CHANNEL))
                if _refusal(joined):
                    yield Send(("CLIENT", "TRACKING", "OFF"))
                    tracking = False
    channels = sorted(topics.channels | (frozenset() if tracking else topics.fallback))
    for command, names in (("SUBSCRIBE", channels), ("PSUBSCRIBE", sorted(topics.patterns))):
        if names:
            answers = yield Send((command, *names), replies=len(names))
            refused = next((why for why in map(_refusal, answers) if why), None)
            if refused:
                raise Refused(refused)
    return Subscribed(tracking, topics)


def amendable(old: Subscribed | None, new: Topics) -> bool:
    """True when a live subscription can move to ``new`` in place (no tracking involved)."""
    return (
        old is not None
        and not old.tracking
        and old.topics.tracking is None
        and new.tracking is None
        and old.topics.fallback == new.fallback
    )


def amendment(old: Topics, new: Topics) -> list[tuple[Send, str, frozenset[str]]]:
    """The commands that move a live subscription from ``old`` to ``new``: subscriptions
    first (so nothing falls in between), then unsubscriptions. Each comes with its kind
    (``channels`` or ``patterns``) and whether it adds (``+``) or removes (``-``) names."""
    plan: list[tuple[Send, str, frozenset[str]]] = []
    for command, kind, names in (
        ("SUBSCRIBE", "+channels", new.channels - old.channels),
        ("PSUBSCRIBE", "+patterns", new.patterns - old.patterns),
        ("UNSUBSCRIBE", "-channels", old.channels - new.channels),
        ("PUNSUBSCRIBE", "-patterns", old.patterns - new.patterns),
    ):
        if names:
            plan.append((Send((command, *sorted(names)), replies=len(names)), kind, names))
    return plan


def amended(old: Topics, kind: str, names: frozenset[str]) -> Topics:
    """``old`` after one step of an amendment succeeded."""
    channels, patterns = old.channels, old.patterns
    if kind == "+channels":
        channels = channels | names
    elif kind == "-channels":
        channels = channels - names
    elif kind == "+patterns":
        patterns = patterns | names
    else:
        patterns = patterns - names
    return Topics(channels, patterns, old.tracking, old.fallback)


# -- liveness and backoff -----------------------------------------------------------------------
class Heartbeat:
    """Decide when to PING an idle subscriber and when its server counts as gone.

    Any frame is proof of life. An idle connection is pinged every ``interval`` seconds; a
    ping not answered (by anything) within ``timeout`` seconds means the server is frozen or
    unreachable: a read alone would wait forever, since pub/sub never times out by itself.
    """

    __slots__ = ("interval", "last_heard", "ping_sent", "timeout")

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.last_heard = now
        self.ping_sent: float | None = None

    def heard(self, now: float) -> None:
        """Something arrived."""
        self.last_heard = now
        self.ping_sent = None

    def sent(self, now: float) -> None:
        """A PING went out."""
        self.ping_sent = now

    def due(self, now: float) -> str | None:
        """``"ping"``, ``"dead"`` or None (nothing to do yet)."""
        if self.ping_sent is not None:
            return "dead" if now - self.ping_sent >= self.timeout else None
        return "ping" if now - self.last_heard >= self.interval else None

    def wait(self, now: float) -> float:
        """Seconds until ``due`` may change."""
        if self.ping_sent is not None:
            return max(0.0, self.ping_sent + self.timeout - now)
        return max(0.0, self.last_heard + self.interval - now)


def reconnect_delay(failures: int, draw: float, *, base: float = 0.1, cap: float = 5.0) -> float:
    """Capped exponential backoff with jitter: ``draw`` in [0, 1) picks from the upper half."""
    ceiling = cap if failures >= 64 else min(cap, base * math.pow(2, failures))
    return ceiling * (0.5 + draw / 2)


# -- the steps the subscriber twins perform for a subscription's life -----------------------------
class Connect(NamedTuple):
    """Open a new subscriber connection; the reply is the connection."""


class Write(NamedTuple):
    """Send one command on ``conn``."""

    conn: Any
    args: tuple[Any, ...]


class Read(NamedTuple):
    """Read one frame from ``conn``; the reply is the frame, or ``NOTHING`` after ``seconds``."""

    conn: Any
    seconds: float


class Close(NamedTuple):
    """Close ``conn``."""

    conn: Any


class Release(NamedTuple):
    """Close every connection still open."""


class Pause(NamedTuple):
    """Wait ``seconds``, or less if stopped."""

    seconds: float


Step = Connect | Write | Read | Close | Release | Pause
#: The life of a subscription: it yields steps and is sent what each one gave.
Life = Generator[Step, Any, None]

#: The reply to a ``Read`` during which nothing arrived.
NOTHING: Any = object()
