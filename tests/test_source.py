"""Checks of the Rust sources that the compiler cannot make."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RUST_SRC = Path(__file__).resolve().parent.parent / "rust" / "src"


def _functions_taking_a_simd_token(text: str):
    """``(name, line index, attribute lines)`` of each function with a body that takes a
    parameter of type ``S`` (the SIMD token)."""
    lines = text.splitlines()
    for m in re.finditer(r"\bfn\s+(\w+)\s*(<[^(]*?>)?\s*\(", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        params = text[m.end() : i - 1].strip()
        if not re.search(r"(^|,)\s*\w+\s*:\s*S\s*(,|$)", params):
            continue
        if re.match(r"[^;{]*\{", text[i : i + 400]) is None:
            continue  # a trait method's declaration
        line = text.count("\n", 0, m.start())
        attributes = []
        k = line - 1
        while k >= 0 and lines[k].strip().startswith(("#[", "//")):
            attributes.append(lines[k].strip())
            k -= 1
        yield m.group(1), line, attributes


@pytest.mark.skipif(not RUST_SRC.is_dir(), reason="needs the repository's Rust sources")
def test_functions_generic_over_the_simd_token_are_always_inlined():
    """A function generic over the SIMD token that the compiler keeps out of line is compiled
    without the ISA's target features: every intrinsic in it becomes a call. Row kernels paid
    that once per row (7–8% of a float64 softmax or logsumexp of (4096, 1000)) until their sum
    helpers were marked; so every such function is ``#[inline(always)]``."""
    outlined = [
        f"{path.relative_to(RUST_SRC)}:{line + 1} {name}"
        for path in sorted(RUST_SRC.rglob("*.rs"))
        for name, line, attributes in _functions_taking_a_simd_token(path.read_text())
        if "#[inline(always)]" not in attributes
    ]
    assert not outlined, outlined
