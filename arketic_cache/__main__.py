"""``python -m arketic_cache demo``: the library at work on REDIS_URL or the embedded backend."""

from __future__ import annotations

import sys

from ._demo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
