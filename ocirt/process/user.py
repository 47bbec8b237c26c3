"""process.user: supplementary groups, gid, uid and umask of the container process.

Order (as runc's finalizeNamespace/setupUser): groups and gid first (they need CAP_SETGID, which
a non-root uid no longer has), uid last. PR_SET_KEEPCAPS is set around setresuid so a switch from
uid 0 to a non-zero uid keeps the permitted set; the kernel still clears effective and ambient,
and apply_caps sets all sets exactly afterwards.
"""

from __future__ import annotations

import errno
import os
import stat

from ocirt.errors import ConfigError, SetupError
from ocirt.linux import syscalls as sc

_U32 = (1 << 32) - 1


def _id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _U32


def parse(user: object, *, jpath: str = "process.user",
          source: str = "config.json") -> tuple[int, int, tuple[int, ...], int | None]:
    """-> (uid, gid, additionalGids, umask or None)"""
    if user is None:
        user = {}
    if not isinstance(user, dict):
        raise ConfigError(jpath, "must be an object", source)
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    if not _id(uid):
        raise ConfigError(jpath + ".uid", f"invalid uid {uid!r}", source)
    if not _id(gid):
        raise ConfigError(jpath + ".gid", f"invalid gid {gid!r}", source)
    extra = user.get("additionalGids") or []
    if not isinstance(extra, list):
        raise ConfigError(jpath + ".additionalGids", "must be an array", source)
    for i, g in enumerate(extra):
        if not _id(g):
            raise ConfigError(f"{jpath}.additionalGids[{i}]", f"invalid gid {g!r}", source)
    umask = user.get("umask")
    if umask is not None and not (isinstance(umask, int) and not isinstance(umask, bool)
                                  and 0 <= umask <= 0o7777):
        raise ConfigError(jpath + ".umask", f"invalid umask {umask!r}", source)
    return uid, gid, tuple(extra), umask


def apply(uid: int, gid: int, groups: tuple[int, ...], umask: int | None) -> None:
    give_stdio_to(uid)
    try:
        os.setgroups(list(groups))
    except OSError as e:
        # In a user namespace with /proc/self/setgroups = "deny" setgroups is EPERM. Like runc we
        # only tolerate that when no supplementary groups were asked for.
        if e.errno != 1 or groups:
            raise SetupError(f"setgroups {list(groups)}: {e.strerror}") from None
    try:
        os.setresgid(gid, gid, gid)
    except OSError as e:
        raise SetupError(f"setgid {gid}: {e.strerror}"
                         + (" (gid not mapped in the user namespace?)" if e.errno == 22 else "")
                         ) from None
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    try:
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise SetupError(f"setuid {uid}: {e.strerror}"
                         + (" (uid not mapped in the user namespace?)" if e.errno == 22 else "")
                         ) from None
    finally:
        # Capabilities are re-set explicitly by apply_caps; KEEPCAPS is cleared by execve anyway.
        sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    # runc: the configured umask, else 0022 (not the runtime's own umask).
    os.umask(0o022 if umask is None else umask)


def give_stdio_to(uid: int) -> None:
    """Make fds 0-2 owned by the process's uid while we may still chown, as runc's
    fixStdioPermissions: the console (a pty of the container's devpts, whose group is the mount's
    gid= option) must be usable by its user, and so must a pipe the process reopens through
    /dev/stdout. Only the uid changes; /dev/null and files already owned by uid are left alone,
    and so is what cannot be changed (an owner not mapped in a user namespace, a read-only
    file system)."""
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # closed
        if st.st_uid == uid or (stat.S_ISCHR(st.st_mode) and st.st_rdev == _DEV_NULL):
            continue
        try:
            os.fchown(fd, uid, st.st_gid)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise SetupError(f"chown of fd {fd} to uid {uid}: {e.strerror}") from None


_DEV_NULL = os.makedev(1, 3)
