"""Helpers for /proc/*/mountinfo."""

from __future__ import annotations


def unescape(s: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as three octal digits."""
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)
