"""Typed repositories, one Redis type per module, each a sync and async twin pair."""

from ._base import Repository
from ._hash import HashRepository, SyncHashRepository
from ._list import ListRepository, SyncListRepository
from ._set import SetRepository, SyncSetRepository
from ._sorted_set import SortedSetRepository, SyncSortedSetRepository
from ._stream import Claimed, StreamRepository, SyncStreamRepository
from ._string import StringRepository, SyncStringRepository

__all__ = [
    "Claimed",
    "HashRepository",
    "ListRepository",
    "Repository",
    "SetRepository",
    "SortedSetRepository",
    "StreamRepository",
    "StringRepository",
    "SyncHashRepository",
    "SyncListRepository",
    "SyncSetRepository",
    "SyncSortedSetRepository",
    "SyncStreamRepository",
    "SyncStringRepository",
]
