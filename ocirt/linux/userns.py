"""Facts about the user namespace the runtime itself runs in."""

from __future__ import annotations

_in_userns: bool | None = None


def running_in_userns() -> bool:
    """True inside any user namespace but the initial one, whose uid_map is the identity
    over the whole range (as runc's userns.RunningInUserNS decides it)."""
    global _in_userns
    if _in_userns is None:
        try:
            with open("/proc/self/uid_map", "rb") as f:
                _in_userns = f.read().split() != [b"0", b"0", b"4294967295"]
        except OSError:
            _in_userns = False
    return _in_userns
