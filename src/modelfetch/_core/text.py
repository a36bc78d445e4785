"""Text that reaches a terminal: names from a server, a listing or a shared cache, escaped."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every character a terminal could act on shown as an escape instead.

    C0 and C1 controls (ESC, CSI U+009B, OSC U+009D...), DEL, bidi overrides (U+202E) and other
    format or separator characters `str.isprintable` rejects become `\\x9b`, `\\u202e`...; a
    plain space stays. Use it on anything printed that a server or another user could name.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
