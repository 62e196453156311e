"""``python -m arketic_cache``: the command line (``arketic-cache``): ``demo``, ``health``..."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
