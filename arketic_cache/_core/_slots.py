"""Redis Cluster hash slots: which keys may share one multi-key command.

Multi-key effects are grouped per slot, so the same flows run on a cluster unchanged.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Iterable

__all__ = ["SLOT_COUNT", "group_by_slot", "key_slot"]

SLOT_COUNT = 16384


def key_slot(key: str) -> int:
    """Return the cluster slot of ``key``, honouring a non-empty ``{hash tag}``."""
    raw = key.encode("utf-8", "surrogateescape")
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return crc_hqx(raw, 0) % SLOT_COUNT  # CRC16-XMODEM, Redis' own, in C


def group_by_slot(keys: Iterable[str]) -> dict[int, list[int]]:
    """Map each slot to the positions of the keys that fall in it, in input order."""
    groups: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key_slot(key), []).append(position)
    return groups
