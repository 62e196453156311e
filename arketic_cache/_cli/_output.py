"""What the commands print: aligned tables and JSON on stdout, progress on stderr."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["Progress", "emit_json", "table"]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    """Print ``rows`` under ``headers``, columns aligned (numbers to the right)."""
    out = out or sys.stdout
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(parts: Sequence[str]) -> str:
        padded = [
            p.rjust(w) if numeric[i] else p.ljust(w)
            for i, (p, w) in enumerate(zip(parts, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    print(line(headers), file=out)
    print(line(["-" * w for w in widths]), file=out)
    for row in cells:
        print(line(row), file=out)


def emit_json(document: Any, out: TextIO | None = None) -> None:
    """Print ``document`` as one JSON document (for scripts)."""
    print(json.dumps(document, indent=2, ensure_ascii=False, default=str), file=out or sys.stdout)


class Progress:
    """A ``\\r`` counter on stderr while it is a terminal (at most 10 updates a second), and
    one closing line always, so a log shows how far a scan went."""

    def __init__(self, what: str, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.live = not quiet and self.stream.isatty()
        self.count = 0
        self._shown = 0.0

    def advance(self, by: int, detail: str = "") -> None:
        self.count += by
        now = time.monotonic()
        if self.live and now - self._shown >= 0.1:
            self._shown = now
            print(f"\r{self.what}: {self.count:,}{detail}", end="", file=self.stream, flush=True)

    def done(self, summary: str) -> None:
        prefix = "\r" if self.live else ""
        print(f"{prefix}{self.what}: {summary}", file=self.stream, flush=True)
