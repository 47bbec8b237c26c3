"""Helpers for the runtime's tests (a module of its own: `conftest` is ambiguous when several
test directories have one)."""

from __future__ import annotations

import array
import os
import select
import socket
import time
import uuid
from pathlib import Path


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def run_out(ocirt, bundle, cid: str, script: str) -> str:
    """`run` a shell script in the bundle; its stdout (the run must succeed)."""
    bundle.sh(script)
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def host_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split(" - ")[0].split()[4] for line in f]


def cgroup_dirs_named(name: str) -> list[str]:
    found = []
    for top in Path("/sys/fs/cgroup").iterdir():
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(top):
            if os.path.basename(dirpath) == name:
                found.append(dirpath)
    return found


def pids_with_cmdline(marker: str) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{p}/cmdline").read_bytes():
                    out.append(int(p))
            except OSError:
                pass
    return out


def cgroup_mounts() -> tuple[dict[str, str], str | None]:
    """(v1 controller -> mount point, the cgroup2 mount point or None) of this host."""
    v1: dict[str, str] = {}
    unified = None
    with open("/proc/self/mounts") as f:
        for line in f:
            _, mnt, typ, opts = line.split()[:4]
            if typ == "cgroup2":
                unified = mnt
            elif typ == "cgroup":
                for o in opts.split(","):
                    v1.setdefault(o, mnt)
    return v1, unified


def cgroup_dirs(pid: int) -> dict[str, str]:
    """controller -> the process's cgroup directory ("" for the cgroup2 hierarchy)."""
    v1, unified = cgroup_mounts()
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if ctrls == "":
            if unified:
                out[""] = unified + path
            continue
        for c in ctrls.split(","):
            if c in v1:
                out[c] = v1[c] + path
    return out


def read_cgroup_file(d: str, name: str) -> str:
    return Path(d, name).read_text().strip()


def block_device() -> tuple[int, int] | None:
    """(major, minor) of a real disk of this machine, for blkio/io rules."""
    with open("/proc/partitions") as f:
        for line in f.read().splitlines()[2:]:
            parts = line.split()
            if len(parts) == 4 and not parts[3].startswith(("loop", "zram", "ram")):
                return int(parts[0]), int(parts[1])
    return None


def blkio_weight_file() -> str | None:
    """The v1 blkio weight file this kernel offers: BFQ's, or CFQ's on older kernels; None
    when no block device uses a proportional scheduler (mq-deadline, kyber, none)."""
    d = cgroup_mounts()[0].get("blkio")
    if d is None:
        return None
    for name in ("blkio.bfq.weight", "blkio.weight"):
        if os.path.exists(os.path.join(d, name)):
            return name
    return None


class ConsoleSocket:
    """A manager's --console-socket listener (conmon, go-runc): one SCM_RIGHTS fd, and a
    payload."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(30)

    def receive(self) -> tuple[bytes, list[int]]:
        conn, _ = self.sock.accept()
        with conn:
            fds = array.array("i")
            msg, anc, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, typ, data in anc:
                assert (level, typ) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        return msg, list(fds)

    def hand_over(self, argv: list[str]) -> tuple[bytes, list[int]]:
        """Run `argv` (an ocirt call with --console-socket self.path), which must succeed;
        what it sent."""
        import subprocess
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        got = self.receive()
        assert p.wait(30) == 0, p.stderr.read()
        return got

    def close(self) -> None:
        self.sock.close()


def read_until(fd: int, marker: bytes, timeout: float = 15) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf
