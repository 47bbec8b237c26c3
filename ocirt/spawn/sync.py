"""Messages between the runtime process and the container's init.

A SOCK_SEQPACKET socketpair keeps message boundaries (one JSON object per packet) and carries
file descriptors (SCM_RIGHTS) for the console master and the seccomp listener. EOF means the
other side died, which the init treats as "abort" and the runtime as "init failed".
"""

from __future__ import annotations

import os
import struct

# _socket, the C module under `socket`: the Python wrapper imports enum, selectors and more,
# milliseconds on every create for nothing this module uses.
import _socket

from ocirt import jsonio

_SOL_SOCKET = _socket.SOL_SOCKET
_SCM_RIGHTS = _socket.SCM_RIGHTS

MAX_MSG = 1 << 20


class SyncError(Exception):
    pass


class Sync:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple["Sync", "Sync"]:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, kind: str, fds: list[int] | tuple[int, ...] = (), **data) -> None:
        data["type"] = kind
        payload = jsonio.dumps(data, compact=True).encode()
        if fds:
            self.sock.sendmsg([payload], [(_SOL_SOCKET, _SCM_RIGHTS,
                                           struct.pack(f"{len(fds)}i", *fds))])
        else:
            self.sock.send(payload)

    def recv(self) -> tuple[dict, list[int]]:
        # array would do too, but importing it pulls in collections.abc (milliseconds).
        fds: list[int] = []
        try:
            msg, anc, _flags, _addr = self.sock.recvmsg(MAX_MSG, _socket.CMSG_SPACE(16 * 4))
        except ConnectionResetError:
            # The peer exited with a message of ours unread (say, an init that failed before
            # reading "cgroup"): the kernel reports that once, ahead of the messages the peer
            # had sent us, which still follow, and then EOF.
            msg, anc, _flags, _addr = self.sock.recvmsg(MAX_MSG, _socket.CMSG_SPACE(16 * 4))
        for level, typ, cdata in anc:
            if level == _SOL_SOCKET and typ == _SCM_RIGHTS:
                n = len(cdata) // 4
                fds.extend(struct.unpack(f"{n}i", cdata[:n * 4]))
        if not msg:
            for fd in fds:
                os.close(fd)
            raise SyncError("EOF")
        return jsonio.loads(msg), fds

    def expect(self, kind: str) -> tuple[dict, list[int]]:
        msg, fds = self.recv()
        if msg.get("type") == "error":
            raise SyncError(msg.get("message", "init failed"))
        if msg.get("type") != kind:
            raise SyncError(f"unexpected message {msg.get('type')!r}, wanted {kind!r}")
        return msg, fds

    def peek_eof(self) -> bool:
        """Whether the peer has closed its end (a message still unread is not EOF)."""
        try:
            return self.sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False

    def close(self) -> None:
        self.sock.close()
