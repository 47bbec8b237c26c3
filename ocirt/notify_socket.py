"""sd_notify passthrough (NOTIFY_SOCKET), as runc does it (libcontainer's notify_socket.go).

create, when NOTIFY_SOCKET is set in the runtime's environment: the container gets the
directory <statedir>/notify bind-mounted read-only at /run/notify and
NOTIFY_SOCKET=/run/notify/notify.sock in its environment.
start (or run), when NOTIFY_SOCKET is set in its environment and create made that directory:
binds a datagram socket there before releasing the init, then waits for the container's first
READY= line and passes it on to the host's socket, followed by MAINPID=<init's host pid>. It
returns without forwarding anything if the init exits first.
"""

from __future__ import annotations

import os
import select
import socket

ENV = "NOTIFY_SOCKET"
DIR_NAME = "notify"
SOCKET_NAME = "notify.sock"
CONTAINER_DIR = "/run/notify"
CONTAINER_SOCKET = CONTAINER_DIR + "/" + SOCKET_NAME


def host_socket() -> str:
    """The host's notify socket from our environment ('' when there is none)."""
    return os.environ.get(ENV, "")


def setup_spec(config: dict, state_dir: str) -> None:
    """create: the bind mount and the container's NOTIFY_SOCKET, added to the config."""
    config.setdefault("mounts", []).append({
        "destination": CONTAINER_DIR,
        "source": os.path.join(state_dir, DIR_NAME),
        "type": "bind",
        "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
    })
    process = config.get("process")
    if process is not None:
        process["env"] = list(process.get("env") or []) + [f"{ENV}={CONTAINER_SOCKET}"]


def make_dir(state_dir: str) -> None:
    os.mkdir(os.path.join(state_dir, DIR_NAME), 0o755)


def _address(path: str) -> str:
    # systemd writes abstract sockets as "@name".
    return "\0" + path[1:] if path.startswith("@") else path


class Forwarder:
    """start's half: the socket in the container's /run/notify and the host's address."""

    def __init__(self, state_dir: str, host: str) -> None:
        self.host = host
        self.path = os.path.join(state_dir, DIR_NAME, SOCKET_NAME)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.sock.bind(self.path)
            os.chmod(self.path, 0o777)
        except BaseException:
            self.sock.close()
            raise

    @classmethod
    def for_container(cls, state_dir: str) -> "Forwarder | None":
        host = host_socket()
        if not host or not os.path.isdir(os.path.join(state_dir, DIR_NAME)):
            return None
        return cls(state_dir, host)

    def forward(self, pid: int) -> None:
        """Wait for READY= from the container (or the exit of `pid`), then notify the host."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            self.close()
            return
        try:
            poller = select.poll()
            poller.register(self.sock.fileno(), select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                ready = dict(poller.poll())
                if self.sock.fileno() in ready:
                    data = self.sock.recv(4096)
                    line = next((ln for ln in data.split(b"\n") if ln.startswith(b"READY=")),
                                None)
                    if line is not None:
                        self._notify_host(line, pid)
                        return
                    continue
                if pidfd in ready:
                    return
        finally:
            os.close(pidfd)
            self.close()

    def _notify_host(self, ready: bytes, pid: int) -> None:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            client.connect(_address(self.host))
            client.send(ready + b"\n")
            client.send(f"MAINPID={pid}\n".encode())
        finally:
            client.close()

    def close(self) -> None:
        self.sock.close()
