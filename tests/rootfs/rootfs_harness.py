"""Run the rootfs steps for real in a throwaway container made by forking pytest.

child:        unshare(NEWNS|NEWPID|NEWNET|NEWIPC|NEWUTS), fork, wait, exit with its status
grandchild:   PID 1 of the new pid namespace: prepare -> [hook] -> apply_sysctl -> pivot ->
              finalize -> a Python probe or `exec busybox sh -c SCRIPT`
Reports go back over a pipe as `@@{json}` lines; the shell's output follows verbatim. Every
forked process leaves through os._exit().
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from ocirt.linux import syscalls as sc
from ocirt.rootfs import setup

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "cat", "ls", "mount", "stat", "touch", "mkdir", "echo", "readlink", "test",
           "grep", "head", "id", "rm", "ln", "sysctl", "find", "wc", "sed", "cut", "tr")

RUNC_SPEC_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
]
RUNC_MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
               "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
               "/proc/scsi"]
RUNC_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def runc_spec_config() -> dict:
    """What `runc spec` writes (runc 1.1.5), minus the process."""
    return {
        "ociVersion": "1.0.2-dev",
        "root": {"path": "rootfs", "readonly": True},
        "process": {"terminal": False, "cwd": "/", "args": ["sh"]},
        "mounts": copy.deepcopy(RUNC_SPEC_MOUNTS),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": list(RUNC_MASKED),
            "readonlyPaths": list(RUNC_READONLY),
        },
    }


class Bundle:
    """A tmp bundle with a busybox rootfs; remove() deletes it."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="ocirt-rootfs-test-")
        self.rootfs = os.path.join(self.path, "rootfs")
        os.makedirs(os.path.join(self.rootfs, "bin"))
        shutil.copy2(BUSYBOX, os.path.join(self.rootfs, "bin", "busybox"))
        for a in APPLETS:
            os.symlink("busybox", os.path.join(self.rootfs, "bin", a))
        for d in ("proc", "sys", "dev", "etc", "tmp"):
            os.mkdir(os.path.join(self.rootfs, d))

    def at(self, rel: str) -> str:
        return os.path.join(self.rootfs, rel.lstrip("/"))

    def remove(self) -> None:
        shutil.rmtree(self.path)


@dataclass
class Result:
    status: int
    messages: list[dict] = field(default_factory=list)
    output: str = ""

    def msg(self, kind: str) -> dict | None:
        return next((m for m in self.messages if m.get("kind") == kind), None)

    @property
    def error(self) -> dict | None:
        return self.msg("error")

    @property
    def value(self) -> Any:
        m = self.msg("result")
        return m["value"] if m else None

    @property
    def new_mounts(self) -> list[str]:
        m = self.msg("prepared")
        return m["new_mounts"] if m else []


def _mountpoints() -> dict[str, str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[0]: line.split()[4] for line in f}


NS_FLAGS = (sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWNET | sc.CLONE_NEWIPC
            | sc.CLONE_NEWUTS)


def run(plan: setup.Plan, *, script: str | None = None,
        probe: Callable[[], Any] | None = None,
        hook: Callable[[setup.Plan], None] | None = None,
        no_pivot: bool = False, stop_after_prepare: bool = False,
        extra_ns: int = 0) -> Result:
    """Fork a container for `plan`, report over a pipe, wait; see the module docstring."""
    host_mntns = os.stat("/proc/self/ns/mnt").st_ino
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 120
        try:
            os.close(r)
            sc.unshare(NS_FLAGS | extra_ns)
            gpid = os.fork()
            if gpid == 0:
                _grandchild(w, plan, host_mntns, script, probe, hook, no_pivot,
                            stop_after_prepare)
                os._exit(121)
            os.close(w)
            _, st = os.waitpid(gpid, 0)
            status = os.waitstatus_to_exitcode(st)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status & 0xFF)
    os.close(w)
    buf = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        buf += chunk
    os.close(r)
    _, st = os.waitpid(pid, 0)
    res = Result(os.waitstatus_to_exitcode(st))
    out = []
    for line in buf.decode(errors="replace").splitlines(keepends=True):
        if line.startswith("@@"):
            res.messages.append(json.loads(line[2:]))
        else:
            out.append(line)
    res.output = "".join(out)
    return res


def _send(w: int, **msg: Any) -> None:
    os.write(w, b"@@" + json.dumps(msg).encode() + b"\n")


def _grandchild(w, plan, host_mntns, script, probe, hook, no_pivot, stop_after_prepare):
    try:
        if os.stat("/proc/self/ns/mnt").st_ino == host_mntns:
            os._exit(122)  # never touch the host's mount table
        before = _mountpoints()
        setup.prepare(plan)
        if hook:
            hook(plan)
        after = _mountpoints()
        new = sorted(mp for mid, mp in after.items() if mid not in before)
        _send(w, kind="prepared", new_mounts=new)
        if stop_after_prepare:
            _send(w, kind="result", value=None)
            os._exit(0)
        setup.apply_sysctl(plan)
        setup.pivot(plan, no_pivot)
        setup.finalize(plan)
        if probe is not None:
            _send(w, kind="result", value=probe())
            os._exit(0)
        if script is not None:
            os.dup2(w, 1)
            os.dup2(w, 2)
            os.execv("/bin/sh", ["sh", "-c", script])
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        try:
            _send(w, kind="error", type=type(e).__name__, msg=str(e),
                  tb=traceback.format_exc())
        finally:
            os._exit(1)
