"""A throw-away unprivileged account, as a login would give it: /etc/subuid and /etc/subgid
ranges (for newuidmap/newgidmap) and a runtime dir /run/user/UID (no systemd/logind here to make
one). Everything is removed afterwards: the account, its id ranges, its runtime dir."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

OCIRT = os.environ.get("OCIRT_BIN", str(Path(__file__).resolve().parents[1] / "hack" / "ocirt"))
SUBID_SIZE = 65536
FIRST_UID = 23100
FIRST_SUBID = 3_000_000
ACCOUNT_TOOLS = ("useradd", "userdel", "setpriv", "newuidmap", "newgidmap")


class User:
    def __init__(self, name: str, uid: int, gid: int, subid: int, home: str = "/") -> None:
        self.name = name
        self.uid = uid
        self.gid = gid
        self.subid = subid          # first id of its /etc/subuid and /etc/subgid range
        self.home = home
        self.runtime_dir = f"/run/user/{uid}"

    def env(self, **extra: str) -> list[str]:
        """A command prefix running as this account with a login's environment."""
        env = {"XDG_RUNTIME_DIR": self.runtime_dir, "HOME": self.home, "USER": self.name,
               "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(extra)
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "env", "-i", *(f"{k}={v}" for k, v in env.items())]

    def ocirt(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """`ocirt ARGS` as this account, with `env` over its usual environment."""
        return subprocess.run([*self.env(**env), OCIRT, *args], capture_output=True,
                              stdin=subprocess.DEVNULL)


def missing_account_tools() -> list[str]:
    return [t for t in ACCOUNT_TOOLS if shutil.which(t) is None]


def _free_uid() -> int:
    for uid in range(FIRST_UID, FIRST_UID + 899):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise RuntimeError("no free uid for the rootless test account")


def pids_of_uid(uid: int) -> list[int]:
    """Processes whose real uid is `uid`."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                status = Path(f"/proc/{p}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == uid:
                        out.append(int(p))
                    break
    return out


def end_processes(uid: int) -> None:
    """SIGKILL what runs as `uid` (daemons the account left, e.g. rootless podman's pause
    process) and wait until it is gone."""
    for pid in pids_of_uid(uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(100):
        if not pids_of_uid(uid):
            return
        time.sleep(0.05)


def _append_line(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def _remove_line(path: str, line: str) -> None:
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.writelines(x + "\n" for x in lines if x != line)


@contextlib.contextmanager
def throwaway_account(home: str = "/") -> Iterator[User]:
    """An account with its own group, `home` as its home (not created: "/" by default), a
    SUBID_SIZE range in /etc/subuid and /etc/subgid and a 0700 /run/user/UID. Needs root."""
    uid = _free_uid()
    name = f"ocirtrl{uid}"
    subprocess.run(["useradd", "-M", "-U", "-u", str(uid), "-d", home, "-s", "/bin/sh", name],
                   check=True, capture_output=True)
    gid = pwd.getpwnam(name).pw_gid
    user = User(name, uid, gid, subid=FIRST_SUBID + (uid - FIRST_UID) * SUBID_SIZE, home=home)
    entry = f"{name}:{user.subid}:{SUBID_SIZE}"
    made_run_user = not os.path.isdir("/run/user")
    try:
        for f in ("/etc/subuid", "/etc/subgid"):
            _append_line(f, entry)
        os.makedirs("/run/user", exist_ok=True)
        subprocess.run(["install", "-d", "-m", "700", "-o", str(uid), "-g", str(gid),
                        user.runtime_dir], check=True)
        yield user
    finally:
        end_processes(uid)      # userdel refuses while the account runs anything
        for f in ("/etc/subuid", "/etc/subgid"):
            _remove_line(f, entry)
        shutil.rmtree(user.runtime_dir, ignore_errors=True)
        if made_run_user:
            try:
                os.rmdir("/run/user")
            except OSError:
                pass
        subprocess.run(["userdel", name], capture_output=True)
