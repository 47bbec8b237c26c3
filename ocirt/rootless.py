"""Rootless operation: whether this call runs rootless, and where its state lives.

The rules are runc's. `--rootless auto` means rootless when the effective uid is not 0, or when
it is 0 inside a user namespace (podman runs the runtime so, as root of its own namespace): the
runtime then cannot count on cgroups or on device rules. An unprivileged runtime keeps its
state under $XDG_RUNTIME_DIR/ocirt, since /run/ocirt is root's.
"""

from __future__ import annotations

import os

from ocirt.errors import UsageError

SYSTEM_ROOT = "/run/ocirt"


def is_rootless(flag: str) -> bool:
    """The --rootless flag's value ('true', 'false' or 'auto') as a decision."""
    if flag == "true":
        return True
    if flag == "false":
        return False
    if flag != "auto":
        raise UsageError(f"invalid --rootless value {flag!r}: expected true, false or auto")
    if os.geteuid() != 0:
        return True
    from ocirt.linux.userns import running_in_userns
    return running_in_userns()


def _honours_xdg() -> bool:
    # runc's shouldHonorXDGRuntimeDir: an unprivileged user, or root of a user namespace that
    # a user (not root) made, as podman does (USER unset counts as such a user).
    if os.geteuid() != 0:
        return True
    from ocirt.linux.userns import running_in_userns
    return running_in_userns() and os.environ.get("USER") != "root"


def default_root() -> str:
    """The state root when --root is not given."""
    if not _honours_xdg():
        return SYSTEM_ROOT
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if not xdg:
        if os.geteuid() == 0:
            return SYSTEM_ROOT
        raise UsageError("XDG_RUNTIME_DIR is not set: an unprivileged ocirt keeps its state in "
                         "$XDG_RUNTIME_DIR/ocirt (set it, or pass --root)")
    if not os.path.isabs(xdg):
        raise UsageError(f"XDG_RUNTIME_DIR {xdg!r} is not an absolute path")
    if not os.access(xdg, os.W_OK | os.X_OK):
        raise UsageError(f"XDG_RUNTIME_DIR {xdg} is not usable: it must be a directory the user "
                         "can write (or pass --root)")
    return os.path.join(xdg, "ocirt")
