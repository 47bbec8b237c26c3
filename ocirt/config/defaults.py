"""The config.json that `ocirt spec` writes: runc's `spec` example (runc 1.1.5 .. HEAD)."""

from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.3.0"

_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def _cgroup2_unified() -> bool:
    # Only a pure cgroup v2 host exposes cgroup.controllers at the mount root; hybrid hosts have
    # a tmpfs there.
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def default_spec(rootless: bool = False) -> dict[str, Any]:
    """A fresh dict each call (callers may edit it)."""
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            # Never "inheritable": with it, files carrying inheritable file capabilities gain
            # them on execve (CVE-2022-29162 and the matching Moby/Podman/CRI-O advisories).
            "capabilities": {
                "bounding": list(_DEFAULT_CAPS),
                "effective": list(_DEFAULT_CAPS),
                "permitted": list(_DEFAULT_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "ocirt",
        "mounts": [
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
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                           {"type": "mount"}],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    }
    if _cgroup2_unified():
        # A private cgroup namespace only makes /sys/fs/cgroup sensible on a pure v2 host.
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    if rootless:
        _to_rootless(spec)
    return spec


def _to_rootless(spec: dict[str, Any]) -> None:
    """runc's ToRootless: own user namespace mapping only the caller, keep the host network."""
    lx = spec["linux"]
    lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] not in ("network", "user")]
    lx["namespaces"].append({"type": "user"})
    lx["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    lx["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    mounts = []
    for m in spec["mounts"]:
        if os.path.normpath(m["destination"]) == "/sys":
            # A user namespace that does not own the network namespace cannot mount sysfs.
            mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            continue
        if "options" in m:
            # Only the caller's ids exist inside: gid=5 (tty) cannot be mapped.
            m["options"] = [o for o in m["options"] if not o.startswith(("gid=", "uid="))]
        mounts.append(m)
    spec["mounts"] = mounts
    # An unprivileged user cannot write the device cgroup (or any cgroup it was not delegated).
    del lx["resources"]
