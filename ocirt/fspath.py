"""The few path tests of the short verbs (state, start, kill, delete), on the `posix` C module.

`import os` costs about a fifth of the interpreter's own start-up (it builds the
collections.abc classes for os.environ), more than anything else a short verb does. Modules
on those paths call `posix` (the C module under os: same functions, same errors) and these
helpers instead; what only some calls need imports os where it is used.
"""

from __future__ import annotations

import posix

_S_IFMT, _S_IFDIR = 0o170000, 0o040000


def exists(path: str) -> bool:
    """os.path.exists."""
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def isdir(path: str) -> bool:
    """os.path.isdir."""
    try:
        return posix.stat(path).st_mode & _S_IFMT == _S_IFDIR
    except (OSError, ValueError):
        return False


def dirname(path: str) -> str:
    """os.path.dirname of a normal path (no trailing or doubled slashes)."""
    head = path.rpartition("/")[0]
    return head or ("/" if path.startswith("/") else "")


def walk_dirs(top: str) -> list[str]:
    """The directories a top-down os.walk(top) visits, breadth first (each after its parent):
    none if `top` cannot be listed, and those that vanish meanwhile are skipped."""
    found = [top]
    for i, d in enumerate(found):
        try:
            with posix.scandir(d) as entries:
                found.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            if i == 0:
                return []
    return found


def abspath(path: str) -> str:
    """os.path.abspath; a path that is absolute and normal already is returned as it is."""
    if path.startswith("/") and not path.startswith("//") and (
            path == "/" or ("//" not in path and "/./" not in path and "/../" not in path
                            and not path.endswith(("/", "/.", "/..")))):
        return path
    import os.path
    return os.path.abspath(path)
