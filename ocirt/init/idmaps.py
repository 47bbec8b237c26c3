"""The runtime writes the id maps of the user namespace its intermediate child just made.

The kernel's rules (user_namespaces(7)): a writer with CAP_SETUID/CAP_SETGID over the parent
namespace (the host's root, or root of the user namespace podman made) may write any map of ids
it has. An unprivileged writer may write only a single line mapping its own effective id, and
for gid_map only after /proc/PID/setgroups says "deny" (else it could drop groups it was denied
by). Anything wider needs the setuid helpers newuidmap/newgidmap (Debian package uidmap), which
check the ranges against /etc/subuid and /etc/subgid, as runc and crun use them.

The child is dumpable while we write: a non-dumpable process's /proc files belong to the host's
root, which neither an unprivileged runtime nor newuidmap may write through.
"""

from __future__ import annotations

import os

from ocirt.errors import SetupError

# map file -> (config key, helper)
_MAPS = (("uid_map", "uidMappings", "newuidmap"), ("gid_map", "gidMappings", "newgidmap"))


def write(pid: int, linux: dict) -> None:
    privileged = os.geteuid() == 0
    for name, key, helper in _MAPS:
        maps = linux.get(key) or []
        if not maps:
            continue
        if privileged:
            _write_direct(pid, name, maps)
            continue
        own = os.geteuid() if name == "uid_map" else os.getegid()
        if len(maps) == 1 and maps[0]["size"] == 1 and maps[0]["hostID"] == own:
            if name == "gid_map":
                _write_file(pid, "setgroups", b"deny")
            _write_direct(pid, name, maps)
        else:
            _run_helper(helper, pid, key, maps)


def _format(maps: list[dict]) -> bytes:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps).encode()


def _write_direct(pid: int, name: str, maps: list[dict]) -> None:
    _write_file(pid, name, _format(maps))


def _write_file(pid: int, name: str, data: bytes) -> None:
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SetupError(f"failed to write {name}: open /proc/{pid}/{name}: {e.strerror}") from None
    try:
        os.write(fd, data)
    except OSError as e:
        raise SetupError(f"failed to write {name}: {e.strerror}") from None
    finally:
        os.close(fd)


def _run_helper(helper: str, pid: int, key: str, maps: list[dict]) -> None:
    import shutil
    import subprocess
    path = shutil.which(helper)
    if path is None:
        raise SetupError(f"linux.{key}: mapping more than the caller's own id as an unprivileged "
                         f"user needs {helper}, which is not on PATH (Debian package uidmap)")
    argv = [path, str(pid)]
    for m in maps:
        argv += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, check=False)
    if p.returncode != 0:
        out = p.stdout.decode(errors="replace").strip().replace("\n", "; ")
        raise SetupError(f"{helper} failed (status {p.returncode}) for linux.{key}: {out}")
