"""--preserve-fds N: the caller's fds 3..3+N-1 go to the container process."""

from __future__ import annotations

import os

from ocirt.errors import UsageError


def check(n: int, flag: str = "--preserve-fds") -> None:
    """Each preserved fd must be open in the runtime, so N is bounded by its open-file limit
    (runc refuses such values as "value out of range"), and one that was not passed is named
    here rather than failing later in the init as a bare "Bad file descriptor"."""
    if n <= 0:
        return
    limit = os.sysconf("SC_OPEN_MAX")
    if n > limit - 3:
        raise UsageError(f"invalid {flag} {n}: value out of range (fds 3 to {n + 2} cannot "
                         f"exist under the open-file limit of {limit})")
    for fd in range(3, 3 + n):
        # What the caller passed is inheritable (it came through exec); everything ocirt
        # opens is close-on-exec. So a number in the range that is closed, or is one of ours
        # (it was free when we opened it), was not passed: refuse, rather than hand the
        # container one of the runtime's own fds.
        try:
            passed = os.get_inheritable(fd)
        except OSError:
            passed = False
        if not passed:
            raise UsageError(f"{flag} {n}: file descriptor {fd} was not passed to ocirt "
                             "(it is not open)")
