"""The unprivileged test account and the id maps the rootless tests use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

OCIRT = os.environ.get("OCIRT_BIN", str(Path(__file__).resolve().parents[2] / "hack" / "ocirt"))
SUBID_SIZE = 65536


class User:
    def __init__(self, name: str, uid: int, gid: int, subid: int) -> None:
        self.name = name
        self.uid = uid
        self.gid = gid
        self.subid = subid          # first id of its /etc/subuid and /etc/subgid range
        self.runtime_dir = f"/run/user/{uid}"

    def env(self, **extra: str) -> list[str]:
        env = {"XDG_RUNTIME_DIR": self.runtime_dir, "HOME": "/", "USER": self.name,
               "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(extra)
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "env", "-i", *(f"{k}={v}" for k, v in env.items())]

    def ocirt(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """`ocirt ARGS` as this account, with `env` over its usual environment."""
        return subprocess.run([*self.env(**env), OCIRT, *args], capture_output=True,
                              stdin=subprocess.DEVNULL)


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
