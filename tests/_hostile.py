"""A hypothesis strategy for hostile names: traversal, separators, encodings, controls, look-alikes."""

from __future__ import annotations

import string

from hypothesis import strategies as st

PIECES = [*string.ascii_letters[:6], ".", "/", "\\", "-", "_", "%2F", "%2e%2e", "\x00", "\n", " ", ".."]
PIECES += [
    "\uff0f",
    "\uff0e",
    "\u2024",
    "é",
]  # fullwidth solidus and full stop, one-dot leader, a plain accent

hostile_names = st.lists(st.sampled_from(PIECES), max_size=30).map("".join) | st.text(max_size=300)
"""Strings built from dangerous pieces, or arbitrary text."""
