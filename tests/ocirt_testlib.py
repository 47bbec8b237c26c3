"""Helpers for the runtime's tests (a module of its own: `conftest` is ambiguous when several
test directories have one)."""

from __future__ import annotations

import os
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


def wait_until(cond, what: str, deadline: float = 30.0, step: float = 0.02) -> None:
    """Poll until cond() holds; a generous deadline only turns a hang into a failure."""
    import time
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"still waiting for {what} after {deadline:.0f} s")
        time.sleep(step)


def process_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat, None once it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()[0].decode()


def paused_at(ocirt, point: str, *args: str, **popen):
    """Start `ocirt ARGS` with OCIRT_TEST_PAUSE_AT=point and return it (a Popen) once it has
    stopped itself there."""
    import subprocess
    env = dict(os.environ, OCIRT_TEST_PAUSE_AT=point)
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen(ocirt.cmd(*args), env=env, **popen)
    wait_until(lambda: process_state(p.pid) == "T" or p.poll() is not None,
               f"ocirt {args[0]} to reach {point}")
    assert p.poll() is None, f"ocirt {args[0]} exited before {point}: {p.stderr.read()!r}"
    return p


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
