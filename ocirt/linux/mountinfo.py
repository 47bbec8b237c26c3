"""/proc/*/mountinfo: its lines as entries, with the escaped fields decoded."""

from __future__ import annotations


class Entry:
    """One mount: `root` within its filesystem, where it is mounted, the filesystem type, the
    source, the filesystem's (super block) options as written, and the optional fields
    (propagation: "shared:N", "master:N", ...)."""

    __slots__ = ("root", "mountpoint", "fstype", "source", "super_options", "optional")

    def __init__(self, root: str, mountpoint: str, fstype: str, source: str,
                 super_options: str, optional: tuple[str, ...] = ()) -> None:
        self.root = root
        self.mountpoint = mountpoint
        self.fstype = fstype
        self.source = source
        self.super_options = super_options
        self.optional = optional


def entries(text: str) -> list[Entry]:
    """The mounts of a mountinfo text, in its order; malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        # Escaped fields hold no spaces, so " - " only ever ends the optional fields.
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        pre_f, post_f = pre.split(" "), post.split(" ")
        if len(pre_f) < 6 or len(post_f) < 3:
            continue
        out.append(Entry(unescape(pre_f[3]), unescape(pre_f[4]), post_f[0], unescape(post_f[1]),
                         post_f[2], tuple(pre_f[6:])))
    return out


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
