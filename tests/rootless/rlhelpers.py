"""The id maps and console hand-over the rootless tests use; the account itself is
rootless_account.py's."""

from __future__ import annotations

import subprocess

from rootless_account import OCIRT, SUBID_SIZE, User  # noqa: F401  (re-exported)


def multi_range(user: User, kind: str = "uid") -> list[dict]:
    """Container root is the account, 1.. its /etc/subuid (or subgid) range: what podman
    maps."""
    return [{"containerID": 0, "hostID": user.uid if kind == "uid" else user.gid, "size": 1},
            {"containerID": 1, "hostID": user.subid, "size": SUBID_SIZE}]


def console_hand_over(console, argv: list[str]) -> list[int]:
    """Run `argv` (an ocirt call with --console-socket), which must succeed; the fds it sent
    to `console` (ocirt_testlib.ConsoleSocket)."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _msg, fds = console.receive()
    assert p.wait(30) == 0, p.stderr.read()
    return fds
