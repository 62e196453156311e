"""Redis Cluster routing: which node serves an effect, and how a batch splits over nodes.

Pure: the slot map is built from a ``CLUSTER SLOTS`` reply, and the drivers' cluster shells
(``_cluster.py``) carry out what these functions decide. A key command goes to the primary of
its key's slot, a script to the primary of ``KEYS[1]``'s slot, a command without a key to any
primary; a transaction must stay in one slot (the flows group their keys so that it does).
``SCAN`` walks every primary in turn behind one composite cursor, so a flow scanning a
cluster is the flow scanning one server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._effects import Arg, Batch, Command, Effect, Eval
from ._slots import SLOT_COUNT, key_slot

__all__ = [
    "MAX_NODES",
    "RENDEZVOUS_SLOT",
    "Node",
    "SlotMap",
    "key_of",
    "parse_slots",
    "scan_cursor",
    "slot_of",
    "split_scan",
]

Node: TypeAlias = tuple[str, int]

#: Where a cluster's subscribers listen and its PUBLISH commands go: the primary serving this
#: slot. Every node relays a PUBLISH to its own subscribers, but answers with their count
#: alone; one meeting node for every process keeps that count the number of receivers.
RENDEZVOUS_SLOT = 0

#: The composite SCAN cursor keeps the primary's position in its low bits.
MAX_NODES = 4096

#: Commands that name no key (they go to any primary).
_KEYLESS = frozenset(
    {
        "PING", "INFO", "TIME", "SCAN", "PUBLISH", "DBSIZE", "ECHO", "HELLO", "CLIENT",
        "SCRIPT", "FUNCTION", "COMMAND", "CLUSTER", "WAIT", "SLOWLOG", "LATENCY", "LASTSAVE",
        "PUBSUB", "FCALL", "FCALL_RO", "READONLY", "READWRITE", "ASKING", "MULTI", "EXEC",
    }
)  # fmt: skip
#: Commands whose key follows a subcommand (``XGROUP CREATE key``, ``MEMORY USAGE key``).
_SUBCOMMANDS = frozenset({"XGROUP", "XINFO", "OBJECT", "MEMORY"})


def _text(arg: Arg) -> str:
    return arg.decode("utf-8", "surrogateescape") if isinstance(arg, bytes) else str(arg)


def key_of(args: Sequence[Arg]) -> str | None:
    """The key a command is routed by (its first), or None for a command without one."""
    name = _text(args[0]).upper()
    if name in _KEYLESS or len(args) < 2:
        return None
    if name in _SUBCOMMANDS:
        return _text(args[2]) if len(args) > 2 else None
    if name in ("XREAD", "XREADGROUP"):
        words = [_text(a).upper() for a in args]
        at = words.index("STREAMS") + 1 if "STREAMS" in words else len(args)
        return _text(args[at]) if at < len(args) else None
    return _text(args[1])


def slot_of(effect: Effect) -> int | None:
    """The slot an effect must run in (a batch: its first keyed command's), or None if any
    primary will do."""
    if type(effect) is Eval:
        return key_slot(effect.keys[0]) if effect.keys else None
    commands = effect.commands if type(effect) is Batch else (effect,)
    for command in commands:
        assert type(command) is Command
        key = key_of(command.args)
        if key is not None:
            return key_slot(key)
        if _text(command.args[0]).upper() == "PUBLISH":
            return RENDEZVOUS_SLOT
    return None


@dataclass(frozen=True, slots=True)
class SlotMap:
    """The primary serving each slot, and every node the cluster named (replicas too)."""

    owners: tuple[Node | None, ...]  #: by slot; None where no node serves it
    primaries: tuple[Node, ...]  #: every primary serving slots, sorted (the SCAN order)
    replicas: tuple[tuple[Node, tuple[Node, ...]], ...]  #: each primary and its replicas

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node, primaries first."""
        seen = dict.fromkeys(self.primaries)
        for _, replicas in self.replicas:
            seen.update(dict.fromkeys(replicas))
        return tuple(seen)

    def covered(self, node: Node) -> int:
        """How many slots ``node`` serves."""
        return sum(1 for owner in self.owners if owner == node)

    def moved(self, slot: int, node: Node) -> SlotMap:
        """This map with ``slot`` served by ``node`` (a MOVED reply said so)."""
        owners = list(self.owners)
        owners[slot] = node
        return SlotMap(tuple(owners), _primaries(owners), self.replicas)


def _primaries(owners: Sequence[Node | None]) -> tuple[Node, ...]:
    return tuple(sorted({owner for owner in owners if owner is not None}))


def parse_slots(reply: Any, asked: Node) -> SlotMap:
    """A slot map from a ``CLUSTER SLOTS`` reply given by node ``asked`` (a node reported
    with an empty address is the one asked, as Redis documents)."""
    owners: list[Node | None] = [None] * SLOT_COUNT
    replicas: dict[Node, set[Node]] = {}
    for entry in reply:
        start, end, primary, *others = entry
        owner = _node(primary, asked)
        for slot in range(int(start), int(end) + 1):
            owners[slot] = owner
        replicas.setdefault(owner, set()).update(_node(other, asked) for other in others)
    listed = tuple((owner, tuple(sorted(nodes))) for owner, nodes in sorted(replicas.items()))
    return SlotMap(tuple(owners), _primaries(owners), listed)


def _node(entry: Sequence[Any], asked: Node) -> Node:
    host = _text(entry[0]) if entry[0] else ""
    return (host or asked[0], int(entry[1]))


def split_scan(cursor: Arg, primaries: int) -> tuple[int, int]:
    """(primary position, that primary's own cursor) of a composite SCAN cursor."""
    value = int(cursor)
    position, own = value % MAX_NODES, value // MAX_NODES
    if position >= primaries:
        raise ValueError("a SCAN cursor of another cluster layout")
    return position, own


def scan_cursor(position: int, own: int, primaries: int) -> int:
    """The composite cursor after a primary answered ``own`` (0: that primary is done)."""
    if own != 0:
        return own * MAX_NODES + position
    return 0 if position + 1 >= primaries else position + 1
