"""``python -m benchmarks.peak OUT MODULE ARGS...``: run MODULE as ``__main__`` and write the
process' peak resident memory (``VmHWM``, KiB) to OUT.

``ru_maxrss`` cannot tell it: a child forked from the large benchmark process carries that
process' high-water mark across ``exec``; ``VmHWM`` belongs to the new address space alone.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def _peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def main() -> None:
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        Path(out).write_text(str(_peak_kib()), encoding="ascii")


if __name__ == "__main__":
    main()
