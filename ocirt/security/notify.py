"""SCMP_ACT_NOTIFY: hand the seccomp listener fd to the agent at linux.seccomp.listenerPath.

runtime-spec (config-linux.md, "container process state"): connect to listenerPath with
AF_UNIX SOCK_STREAM, send the JSON state with the fd in SCM_RIGHTS, all in one sendmsg, then
close (one message per connection). listenerPath is a host path, so this runs in the runtime
process outside the container's mount namespace: the init passes the fd up to it first.
"""

from __future__ import annotations

import json
import os
import socket

from ocirt.errors import SetupError


def process_state(oci_version: str, pid: int, metadata: str, state: dict) -> dict:
    msg = {"ociVersion": oci_version, "fds": ["seccompFd"], "pid": pid}
    if metadata:
        msg["metadata"] = metadata
    msg["state"] = state
    return msg


def send_listener(listener_path: str, metadata: str, fd: int, state: dict,
                  oci_version: str | None = None, timeout: float = 10.0) -> None:
    """Send the container process state and `fd` to the agent. Errors are SetupError: the spec
    makes a failed send an error of create (the container must not start)."""
    if oci_version is None:
        from ocirt import OCI_VERSION
        oci_version = state.get("ociVersion") or OCI_VERSION
    pid = state.get("pid", 0)
    data = json.dumps(process_state(oci_version, pid, metadata, state),
                      separators=(",", ":")).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.settimeout(timeout)
        try:
            s.connect(listener_path)
        except OSError as e:       # runc's words, which tests and users match
            raise SetupError("failed to connect with seccomp agent specified in the seccomp "
                             f"profile: dial unix {listener_path}: {e.strerror or e}") from None
        try:
            n = socket.send_fds(s, [data], [fd])
            if n != len(data):  # cannot happen for a few KiB on a unix socket, but be exact
                s.sendall(data[n:])
        except OSError as e:
            raise SetupError(f"cannot send seccomp fd to {listener_path}: "
                             f"{e.strerror or e}") from None


def recv_listener(conn: socket.socket, maxlen: int = 65536) -> tuple[dict, int]:
    """Agent side (tests, tools): receive (state, fd) from one connection."""
    msg, fds, _flags, _addr = socket.recv_fds(conn, maxlen, 1)
    if not fds:
        raise OSError("no fd received with the seccomp container process state")
    for extra in fds[1:]:
        os.close(extra)
    return json.loads(msg), fds[0]
