"""Thin wrapper: ``python benches/compare.py [--full] [--out DIR] [--threads N]``.

Same as ``python -m smoothmax bench``; see ``smoothmax._bench`` for what is measured.
"""

from __future__ import annotations

import sys

from smoothmax._bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
