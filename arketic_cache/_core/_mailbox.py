"""A subscriber's bounded queue, without I/O or locks: what to keep, what to drop, when to
report a gap.

Every subscription owns one ``Mailbox``. The subscriber connection's reader puts raw messages
in (they are decoded by the consumer, so a slow consumer never slows the reader down) and a
``Gap`` whenever messages may have been lost. At most ``limit`` items are held, so the memory a
consumer that stops reading can pin is bounded by ``limit`` times the largest message. When
full, the overflow policy decides:

* ``"drop_oldest"`` (the default): the oldest message goes, and the consumer's next item is a
  ``Gap`` counting the messages dropped since it last read;
* ``"close"``: the subscription ends; the consumer's next read raises ``SubscriptionOverflow``.

The shells in ``_pubsub.py`` add the lock and the wake-up (a condition or an asyncio event).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .._channels import Gap
from .._exceptions import SubscriptionOverflow
from ._subscribe import Message

__all__ = ["Mailbox", "MessagingStats", "Overflow", "Queued"]

Overflow: TypeAlias = Literal["drop_oldest", "close"]
Queued: TypeAlias = Message | Gap


@dataclass
class MessagingStats:
    """A pub/sub client's own counters."""

    published: int = 0  # messages sent (each counted once, whatever the receivers)
    received: int = 0  # typed messages handed to consumers
    decode_errors: int = 0  # undecodable or wrong-shape messages, skipped
    gaps: int = 0  # gaps reported to consumers
    dropped: int = 0  # messages dropped by an overflowing queue
    errors: int = 0  # publishes that failed on Redis (answered with 0)


class Mailbox:
    """One subscription's queue: raw messages and gaps, at most ``limit`` of them."""

    __slots__ = ("_dropped", "_items", "_lost", "closed", "limit", "policy", "stats")

    def __init__(self, limit: int, policy: Overflow, stats: MessagingStats) -> None:
        self.limit = limit
        self.policy = policy
        self.stats = stats
        self._items: deque[Queued] = deque()
        self._dropped = 0  # dropped since the consumer last read
        self._lost = False  # a gap is queued for the current loss streak
        #: Why the subscription ended (an overflow under "close"), or None while it lasts.
        self.closed: str | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, message: Message) -> bool:
        """Queue ``message``; False when it closed the mailbox (overflow under "close")."""
        if self.closed is not None:
            return False
        items = self._items
        if len(items) >= self.limit:
            if self.policy == "close":
                self.closed = f"more than {self.limit} messages waited to be read"
                items.clear()
                return False
            dropped = items.popleft()
            if type(dropped) is Message:
                self._dropped += 1
                self.stats.dropped += 1
        items.append(message)
        return True

    def lost(self, reason: str) -> None:
        """Messages may be lost from here on: queue one gap per loss streak."""
        if not self._lost and self.closed is None:
            self._lost = True
            self._items.append(Gap(reason))

    def listening(self) -> None:
        """Subscribed again: the next loss is a new streak."""
        self._lost = False

    def take(self) -> Queued | None:
        """The next item for the consumer (an overflow's gap first), or None when empty.

        Raises:
            SubscriptionOverflow: the mailbox closed on an overflow.
        """
        if self.closed is not None:
            raise SubscriptionOverflow(self.closed)
        if self._dropped:
            missed, self._dropped = self._dropped, 0
            return Gap("overflow: the consumer fell behind", missed)
        return self._items.popleft() if self._items else None
