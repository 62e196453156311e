"""Redis Cluster hash slots: which keys may share one multi-key command.

Multi-key effects are grouped per slot, so the same flows run on a cluster unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SLOT_COUNT", "group_by_slot", "key_slot"]

SLOT_COUNT = 16384


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _crc16_table()


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFF00) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: str) -> int:
    """Return the cluster slot of ``key``, honouring a non-empty ``{hash tag}``."""
    raw = key.encode("utf-8", "surrogateescape")
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return _crc16(raw) % SLOT_COUNT


def group_by_slot(keys: Iterable[str]) -> dict[int, list[int]]:
    """Map each slot to the positions of the keys that fall in it, in input order."""
    groups: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key_slot(key), []).append(position)
    return groups
