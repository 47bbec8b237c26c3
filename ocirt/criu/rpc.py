"""criu's RPC, as runc speaks it: `criu swrk 3` with one end of a SOCK_SEQPACKET socketpair as
its fd 3, criu_req / criu_resp protobuf messages over it, NOTIFY messages answered in between.

The messages come from Debian's criu package, which ships the generated module
(pycriu/rpc_pb2.py) next to /usr/include/criu/rpc.proto; python3-protobuf runs it. Only that
module is loaded (pycriu's package would also import every image format), and only by
checkpoint and restore.

criu reads `images_dir_fd` and `work_dir_fd` through /proc/<peer>/fd/N of the process on the
other end of the socket: they stay open here, they are not passed. Fds criu must own itself
(`inherit_fd`: namespaces to join) are passed as its fds 4, 5, ...
"""

from __future__ import annotations

import os
import socket
from typing import Callable

from ocirt import thirdparty
from ocirt.errors import CriuError, DependencyError

_RPC_MODULE = f"{thirdparty.DEBIAN_DIST_PACKAGES}/pycriu/rpc_pb2.py"
_BUFSIZE = 10 * 4096        # runc's: a criu_resp never comes near it
_FIRST_INHERITED = 4        # after stdio and the RPC socket

_messages = None


def messages():
    """The generated rpc_pb2 module (criu_req, criu_opts, criu_resp, enums)."""
    global _messages
    if _messages is None:
        thirdparty.require("google.protobuf", "python3-protobuf", "checkpoint and restore")
        if not os.path.exists(_RPC_MODULE):
            raise DependencyError(f"checkpoint and restore need criu's RPC messages "
                                  f"({_RPC_MODULE}): install Debian's criu (hack/install does)")
        import importlib.util
        spec = importlib.util.spec_from_file_location("ocirt_criu_rpc_pb2", _RPC_MODULE)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _messages = mod
    return _messages


def inherited_fd(index: int) -> int:
    """criu's number for the index-th fd of Swrk(inherit=...)."""
    return _FIRST_INHERITED + index


# (script, pid, fds received with it) -> None; raising aborts the request
Notify = Callable[[str, int, list], None]


class Swrk:
    """One `criu swrk` process serving one request (plus its notifications)."""

    def __init__(self, criu: str, log_path: str, *, stdio: bool = False,
                 inherit: tuple[int, ...] = (), before_request: Callable[[int], None] | None = None
                 ) -> None:
        """stdio: criu gets our stdin/stdout/stderr (restore: the restored process inherits
        its pipes from them); otherwise /dev/null, with stderr kept to quote on failure.
        before_request(pid): runs once criu exists, before it hears anything (restore puts
        it into the container's cgroup there)."""
        self.criu = criu
        self.log_path = log_path
        self.stdio = stdio
        self.inherit = inherit
        self.before_request = before_request
        self.stderr_fd = -1
        self._last_fds: list[int] = []     # received with the last message (SCM_RIGHTS)

    def call(self, req, notify: Notify | None = None):
        """Send `req`, answer notifications, return the final criu_resp; CriuError when criu
        says it failed (with the error lines of its log) or dies."""
        rpc = messages()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = None
        try:
            pid = self._spawn(theirs.fileno())
            theirs.close()
            if self.before_request is not None:
                self.before_request(pid)
            ours.sendall(req.SerializeToString())
            while True:
                resp = self._receive(ours, rpc, req)
                if resp.type != rpc.NOTIFY:
                    break
                try:
                    if notify is not None:
                        notify(resp.notify.script, resp.notify.pid, self._last_fds)
                finally:
                    for fd in self._last_fds:
                        os.close(fd)
                ours.sendall(rpc.criu_req(type=rpc.NOTIFY, notify_success=True)
                             .SerializeToString())
            ours.shutdown(socket.SHUT_WR)
            status = _wait(pid)
            pid = None
            # criu stays in its pre-dump loop until told to dump: a successful PRE_DUMP
            # reply is enough (runc does not check its exit either).
            if status != 0 and req.type != rpc.PRE_DUMP:
                raise self._failure(req, rpc, f"criu exited with status {status}")
            return resp
        finally:
            ours.close()
            theirs.close()
            if pid is not None:
                _wait(pid)      # closing our end makes criu give up
            if self.stderr_fd >= 0:
                os.close(self.stderr_fd)
                self.stderr_fd = -1

    def _spawn(self, sock: int) -> int:
        # Every source is first moved above the target range: dup2 onto itself would keep
        # its close-on-exec flag, and criu would not get it.
        sources = [sock, *self.inherit]
        high = [os.dup(fd) for fd in sources]
        high = [_above(fd, 100) for fd in high]
        actions: list[tuple] = []
        devnull = -1
        try:
            if not self.stdio:
                devnull = _above(os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC), 100)
                self.stderr_fd = _above(os.memfd_create("criu-stderr", os.MFD_CLOEXEC), 100)
                actions += [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                            (os.POSIX_SPAWN_DUP2, self.stderr_fd, 2)]
            actions.append((os.POSIX_SPAWN_DUP2, high[0], 3))
            for i, fd in enumerate(high[1:]):
                actions.append((os.POSIX_SPAWN_DUP2, fd, inherited_fd(i)))
            try:
                return os.posix_spawnp(self.criu, [self.criu, "swrk", "3"], dict(os.environ),
                                       file_actions=actions)
            except OSError as e:
                raise CriuError(f"cannot run {self.criu}: {e.strerror}") from None
        finally:
            for fd in high:
                os.close(fd)
            if devnull >= 0:
                os.close(devnull)

    def _receive(self, sock: socket.socket, rpc, req):
        try:
            data, anc, _flags, _addr = sock.recvmsg(_BUFSIZE, socket.CMSG_SPACE(4 * 8))
        except OSError as e:
            raise self._failure(req, rpc, f"reading from criu: {e.strerror}") from None
        fds: list[int] = []
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(payload) // 4
                fds += [int.from_bytes(payload[i * 4:i * 4 + 4], "little", signed=True)
                        for i in range(n)]
        self._last_fds = fds
        if not data:
            raise self._failure(req, rpc, "criu closed the connection")
        resp = rpc.criu_resp()
        resp.ParseFromString(data)
        if not resp.success:
            for fd in fds:
                os.close(fd)
            self._last_fds = []
            raise self._failure(req, rpc, f"errno {resp.cr_errno}" if resp.cr_errno else "",
                                resp.cr_errmsg)
        return resp

    def _failure(self, req, rpc, why: str, errmsg: str = "") -> CriuError:
        """criu's words: its log's error lines, else the message of its reply (its last
        error line), else what it wrote to stderr before it had a log."""
        kind = rpc.criu_req_type.Name(req.type)
        lines = error_lines(self.log_path) or _errors_in(errmsg) or self._stderr_lines()
        text = f"criu failed: type {kind}"
        if why:
            text += f" {why}"
        if lines:
            text += ": " + "; ".join(lines)
        return CriuError(f"{text} (log file: {self.log_path})")

    def _stderr_lines(self) -> list[str]:
        if self.stderr_fd < 0:
            return []
        os.lseek(self.stderr_fd, 0, os.SEEK_SET)
        data = os.read(self.stderr_fd, 65536).decode(errors="replace")
        return _errors_in(data)


def error_lines(log_path: str) -> list[str]:
    """criu's own words for what went wrong: the `Error (...)` lines of its log without their
    prefixes; of a long list the first (the cause) and the last two (what criu gave up on)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return _errors_in(text)


def _errors_in(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        at = line.find("Error (")
        if at < 0:
            continue
        msg = line[at:]
        close = msg.find("): ")
        found.append(msg[close + 3:].strip() if close >= 0 else msg.strip())
    if len(found) > 4:
        found = [found[0], found[-2], found[-1]]
    return found


def _above(fd: int, minimum: int) -> int:
    import fcntl
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, minimum)
    os.close(fd)
    return moved


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        return os.waitstatus_to_exitcode(status)
