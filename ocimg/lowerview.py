"""What the layers below one layer show at a path, read from their unpacked directories the way
overlayfs merges them (whiteouts hide, a non-directory hides what is below it, opaque
directories stop the search).

Unpacking a layer for overlay mode needs it: a whiteout is written only where a lower layer has
something to hide (overlayfs shows a whiteout in a directory no lower layer has as a broken
entry), and the parent directories a layer leaves out take the lower layers' owner, mode and
times instead of hiding them behind root:root 0755.
"""

from __future__ import annotations

import os
import stat

OPAQUE_XATTR = "trusted.overlay.opaque"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class LowerView:
    def __init__(self, lowers: list[str]) -> None:
        self.lowers = lowers  # top-most first, as overlayfs orders them

    def find(self, rel: str) -> str | None:
        """The path in the lower layer that provides `rel`, or None if the lowers show nothing."""
        parts = [p for p in rel.split("/") if p]
        if not parts:
            return None
        for layer in self.lowers:
            cur, stop = layer, False
            for i, comp in enumerate(parts):
                path = os.path.join(cur, comp)
                st = _lstat(path)
                if st is None:
                    break  # not in this layer: look further down, unless an opaque dir said no
                if is_whiteout(st):
                    return None
                if i == len(parts) - 1:
                    return path
                if not stat.S_ISDIR(st.st_mode):
                    return None  # a file or symlink here hides everything below it
                if _opaque(path):
                    stop = True
                cur = path
            if stop:
                return None
        return None

    def lstat(self, rel: str) -> os.stat_result | None:
        path = self.find(rel)
        return os.lstat(path) if path else None
