"""Resolving an image's `User` against the image's own /etc/passwd and /etc/group."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ocimg.errors import BundleError, UnsafeEntry
from ocimg.safepath import Root


@dataclass
class User:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str | None = None
    name: str | None = None


def _read(root: Root, rel: str, min_fields: int) -> tuple[list[list[str]], str]:
    """The file's rows, and why there are none if it could not be read (for the error message
    when a name is then missing: a symlink loop is the image's problem, not a crash)."""
    try:
        fd = root.open(rel, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            data = f.read(4 << 20)
    except (FileNotFoundError, NotADirectoryError, UnsafeEntry):
        return [], ""
    except OSError as e:  # a symlink loop, a directory, ...
        return [], f" (/{rel} cannot be read: {e.strerror})"
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            row = line.split(":")
            if len(row) >= min_fields:
                rows.append(row)
    return rows, ""


def _id(text: str) -> int | None:
    if text.isdigit():
        n = int(text)
        if n < 2**32 - 1:
            return n
    return None


def resolve(rootfs: str, spec: str) -> User:
    """`spec` is the image config's User: "", name, uid, name:group, uid:gid (and mixes)."""
    user_part, _, group_part = (spec or "").partition(":")
    user_part = user_part or "0"
    with Root(rootfs) as root:
        passwd, passwd_why = _read(root, "etc/passwd", 7)
        groups, groups_why = _read(root, "etc/group", 4)
    uid = _id(user_part)
    entry = None
    for r in passwd:
        if (uid is None and r[0] == user_part) or (uid is not None and _id(r[2]) == uid):
            entry = r
            break
    if entry is None and uid is None:
        raise BundleError(f"user {user_part!r} of the image is not in its /etc/passwd{passwd_why}")
    name = entry[0] if entry else None
    if entry is not None:
        uid = _id(entry[2])
        gid = _id(entry[3])
        if uid is None or gid is None:
            raise BundleError(f"invalid /etc/passwd entry for {user_part!r} in the image")
        home = entry[5] or "/"
    else:
        gid, home = 0, "/"
    assert uid is not None
    if group_part:
        g = _id(group_part)
        if g is None:
            match = [r for r in groups if r[0] == group_part]
            if not match or _id(match[0][2]) is None:
                raise BundleError(f"group {group_part!r} of the image is not in its /etc/group{groups_why}")
            g = _id(match[0][2])
        assert g is not None
        gid = g
    extra: list[int] = []
    if name:
        for r in groups:
            members = [m.strip() for m in r[3].split(",") if m.strip()]
            g = _id(r[2])
            if name in members and g is not None and g != gid and g not in extra:
                extra.append(g)
    return User(uid, gid, extra, home, name)

