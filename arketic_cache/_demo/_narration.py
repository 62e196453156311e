"""The demo's lines (headings, results, notes), and the library's log records as notes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["PREFIX", "either", "flush_logs", "heading", "narrating_logs", "note", "show", "times"]


#: The prefix of every key the demo stores (its clean-up deletes them all).
PREFIX = "demo:"


class _Logged(logging.Handler):
    """Keeps the library's log records until the demo prints them as notes.

    Records may come from the library's threads (the invalidation listener); only the demo's
    own thread prints, so a record never lands inside another line.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._lock = threading.Lock()
        self._records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" ({type(exc).__name__}: {exc})"
        with self._lock:
            self._records.append(f"logged ({record.levelname.lower()}): {text}")

    def take(self) -> list[str]:
        with self._lock:
            records, self._records = self._records, []
        return records


_logged = _Logged()


@contextmanager
def narrating_logs() -> Iterator[None]:
    """Route the ``arketic_cache`` logger into the demo's notes, and restore it afterwards."""
    logger = logging.getLogger("arketic_cache")
    propagate, level = logger.propagate, logger.level
    logger.addHandler(_logged)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(_logged)
        logger.propagate, logger.level = propagate, level
        _logged.take()


def flush_logs() -> None:
    """Print the log records kept since the last line, as notes."""
    for record in _logged.take():
        print(f"    {record}")


def heading(text: str, before: str = "\n") -> None:
    """Print a heading (after a blank line unless ``before`` says otherwise)."""
    print(f"{before}{text}:")
    flush_logs()


def show(label: str, value: Any, *notes: str) -> None:
    """Print a result, the log records its call emitted, then ``notes`` on it."""
    print(f"  {label:<46} -> {value!r}")
    flush_logs()
    for text in notes:
        note(text)


def note(text: str) -> None:
    """Print a note: prose on the result above, or the section's introduction."""
    print(f"    {text}")


def either(ok: bool, yes: str, no: str) -> str:
    """The note for a result that worked, or for the degraded default."""
    return yes if ok else no


def times(n: int) -> str:
    """``once``, ``2 times``..."""
    return "once" if n == 1 else f"{n} times"
