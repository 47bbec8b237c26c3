"""Terminals: the container's pty, handing its master to a manager over --console-socket, and
the foreground proxy `run -t` / `exec -t` use when no manager is there.

Everything is imported at module load: the pty is opened inside the container, where nothing
can be imported any more.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import tty

from ocirt.errors import SetupError
from ocirt.rootfs import console as pty

def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def send_master(sock_fd: int, master: int, name: str) -> None:
    """One SCM_RIGHTS message carrying one fd, with the pty's name as payload (runc's framing,
    which conmon and go-runc expect)."""
    sock = socket.socket(fileno=sock_fd)
    try:
        sock.sendmsg([name.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        array.array("i", [master]))])
    finally:
        sock.close()


def recv_master(sock: socket.socket) -> int:
    fds = array.array("i")
    _msg, anc, _f, _a = sock.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
    if not fds:
        raise SetupError("no console master received from the container")
    return fds[0]


def become_tty(slave: int) -> None:
    """The slave as controlling terminal and stdio of the calling session leader."""
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def clear_onlcr(fd: int) -> None:
    """No "\n" -> "\r\n" on the pty's output, as runc's foreground terminal: what the process
    writes reaches our stdout (often a file or a pipe) as it wrote it."""
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def attach(sock_fd: int, size: dict | None, foreground: bool = False) -> None:
    """In the container (exec, after joining its mount namespace): allocate a verified pty of
    its devpts, send the master, take the slave. `foreground`: the master goes to our own
    runtime's proxy, set up for it before the process can write."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        master, slave, name = pty.open_pty(root, size)
    finally:
        os.close(root)
    if foreground:
        clear_onlcr(master)
    try:
        send_master(sock_fd, master, name)
    finally:
        os.close(master)
    become_tty(slave)


def proxy(master: int, pid: int) -> None:
    """Copy between our terminal and the container's pty until the pty closes, in raw mode, with
    window size changes passed on."""
    stdin_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_tty else None

    def resize(*_a) -> None:
        try:
            rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
            set_size(master, rows, cols)
        except OSError:
            pass

    if stdin_tty:
        resize()
        signal.signal(signal.SIGWINCH, resize)
        tty.setraw(0)
    try:
        fds = [master, 0]
        while True:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    fds.remove(0)
                else:
                    os.write(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
