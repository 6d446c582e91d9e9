"""Command line: ``python -m smoothmax <command>``.

Commands:

``bench``
    Speed and accuracy against NumPy, SciPy and (when installed) PyTorch, ONNX Runtime, JAX.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="python -m smoothmax",
        description="smoothmax: accurate, fast softmax-family numerics for NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"smoothmax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = sub.add_parser(
        "bench",
        help="benchmark speed and accuracy against NumPy, SciPy, PyTorch, ONNX Runtime, JAX",
        description="Benchmark smoothmax against NumPy, SciPy and, when importable, PyTorch, "
        "ONNX Runtime and JAX; prints a Markdown table of times, throughput, speed ratios and "
        "maximum ULP errors.",
    )
    from ._bench import add_arguments

    add_arguments(bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "bench":
        from ._bench import main as bench_main

        return bench_main(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
