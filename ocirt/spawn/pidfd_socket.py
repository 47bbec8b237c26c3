"""--pidfd-socket (runc 1.2+): hand a pidfd of the container's process to the manager, framed
like the console socket (one SCM_RIGHTS message carrying one fd; runc's payload names the
process: "init" or "exec")."""

from __future__ import annotations

import os
import struct

import _socket

from ocirt.errors import SetupError
from ocirt.linux import syscalls as sc


def send(path: str, pid: int, kind: str) -> None:
    try:
        fd = sc.pidfd_open(pid)
    except OSError as e:
        raise SetupError(f"pidfd_open({pid}): {e.strerror}") from None
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
        s.sendmsg([kind.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    except OSError as e:
        raise SetupError(f"failed to send a pidfd to {path}: {e.strerror or e}") from None
    finally:
        s.close()
        os.close(fd)
