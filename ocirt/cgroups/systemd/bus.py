"""A D-Bus connection to a systemd manager: PID 1 on the system bus for root, the user's own
`systemd --user` on the user's bus for a rootless container (as runc connects).

The wire format is jeepney's (Debian's python3-jeepney: pure Python, no C extension, no
event loop, maintained); the SASL handshake is done here because jeepney's sends the caller's
uid, which inside a user namespace (a rootless podman's runtime) is not the uid the bus sees
on the socket: like sd-bus, we send EXTERNAL with no uid and let the bus take it from the
socket's credentials.
"""

from __future__ import annotations

import os
import socket

from ocirt import thirdparty
from ocirt.errors import CgroupError

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
PROPERTIES = "org.freedesktop.DBus.Properties"

# How long systemd may take to run a start or stop job (runc waits 30 s too).
JOB_TIMEOUT = 30.0
_AUTH_TIMEOUT = 5.0

_SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"


class BusError(CgroupError):
    """An error reply from the manager; `name` is its D-Bus error name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def load_client():
    return thirdparty.require("jeepney", "python3-jeepney", "the systemd cgroup driver")


def bus_address(user: bool) -> str:
    """The bus of the manager that owns our units, as a D-Bus address."""
    if not user:
        return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or _SYSTEM_BUS
    addr = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if addr:
        return addr
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if not xdg:
        raise CgroupError("rootless systemd cgroup driver: neither DBUS_SESSION_BUS_ADDRESS nor "
                          "XDG_RUNTIME_DIR is set, so the user's systemd cannot be reached")
    return f"unix:path={xdg}/bus"


def _socket_path(address: str) -> str:
    from jeepney.bus import get_connectable_addresses
    try:
        return next(get_connectable_addresses(address))
    except (RuntimeError, ValueError, StopIteration):
        raise CgroupError(f"unsupported D-Bus address {address!r} (only unix: sockets)") from None


def _authenticate(sock: socket.socket) -> None:
    """SASL EXTERNAL without an identity: the bus uses SO_PEERCRED's uid."""
    f = sock.makefile("rb", buffering=0)

    def line() -> bytes:
        out = b""
        while not out.endswith(b"\r\n"):
            c = f.read(1)
            if not c:
                raise CgroupError("D-Bus authentication failed: the bus closed the connection")
            out += c
        return out[:-2]

    sock.sendall(b"\0AUTH EXTERNAL\r\n")
    reply = line()
    if reply.startswith(b"DATA"):
        sock.sendall(b"DATA\r\n")
        reply = line()
    if not reply.startswith(b"OK "):
        raise CgroupError(f"D-Bus authentication failed: the bus said {reply.decode(errors='replace')!r}")
    sock.sendall(b"BEGIN\r\n")


class Manager:
    """systemd's org.freedesktop.systemd1.Manager over one connection."""

    def __init__(self, user: bool = False) -> None:
        load_client()
        from jeepney.io.blocking import DBusConnection
        address = bus_address(user)
        path = _socket_path(address)
        where = "the user's bus" if user else "the system bus"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(_AUTH_TIMEOUT)
            sock.connect(path)
            _authenticate(sock)
            sock.settimeout(None)
        except OSError as e:
            sock.close()
            raise CgroupError(f"cannot connect to systemd over {where} at "
                              f"{path.lstrip(chr(0))}: {e.strerror or e}") from None
        except BaseException:
            sock.close()
            raise
        try:
            self.conn = DBusConnection(sock)        # says Hello
        except Exception as e:
            sock.close()
            raise CgroupError(f"cannot talk to {where}: {e}") from None
        self.user = user
        self._subscribed = False

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- calls ----------------------------------------------------------------------------

    def call(self, method: str, signature: str | None = None, *args, path: str = MANAGER_PATH,
             interface: str = MANAGER, timeout: float = JOB_TIMEOUT) -> tuple:
        from jeepney import DBusAddress, new_method_call, MessageType
        msg = new_method_call(DBusAddress(path, SYSTEMD, interface), method, signature, args)
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=timeout)
        except TimeoutError:
            raise CgroupError(f"systemd did not answer {method} in {timeout:.0f} s") from None
        except OSError as e:
            raise CgroupError(f"D-Bus connection to systemd lost during {method}: "
                              f"{e.strerror or e}") from None
        if reply.header.message_type is MessageType.error:
            from jeepney import HeaderFields
            name = reply.header.fields.get(HeaderFields.error_name, "")
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else name
            raise BusError(name, text)
        return reply.body

    def manager_property(self, name: str):
        return self.call("Get", "ss", MANAGER, name, interface=PROPERTIES)[0][1]

    def unit_property(self, unit: str, interface: str, name: str):
        path = self.call("GetUnit", "s", unit)[0]
        return self.call("Get", "ss", interface, name, path=path, interface=PROPERTIES)[0][1]

    def version(self) -> int:
        """The manager's version as a number ("252.38-1~deb12u1" -> 252), 0 if unknown."""
        v = str(self.manager_property("Version")).lstrip('"v')
        digits = ""
        for c in v:
            if not c.isdigit():
                break
            digits += c
        return int(digits or 0)

    # --- jobs -----------------------------------------------------------------------------

    def _subscribe(self) -> None:
        """Ask for job signals: the bus routes them to us (AddMatch), and systemd sends them
        only while someone has subscribed."""
        if self._subscribed:
            return
        from jeepney.bus_messages import message_bus
        self.conn.send_and_get_reply(message_bus.AddMatch(_job_removed_rule(SYSTEMD)))
        self.call("Subscribe")
        self._subscribed = True

    def run_job(self, method: str, signature: str, *args) -> str:
        """Call a method that queues a job (StartTransientUnit, StopUnit) and wait for that
        job's JobRemoved: its result, "done" on success."""
        import time
        self._subscribe()
        with self.conn.filter(_job_removed_rule(), bufsize=256) as removed:
            job = self.call(method, signature, *args)[0]
            deadline = time.monotonic() + JOB_TIMEOUT
            while True:
                while removed:
                    _id, path, _unit, result = removed.popleft().body
                    if path == job:
                        return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CgroupError(f"systemd did not finish {method} of {args[0]} in "
                                      f"{JOB_TIMEOUT:.0f} s")
                try:
                    self.conn.recv_messages(timeout=left)
                except TimeoutError:
                    continue
                except OSError as e:
                    raise CgroupError(f"D-Bus connection to systemd lost during {method}: "
                                      f"{e.strerror or e}") from None


def _job_removed_rule(sender: str | None = None):
    """For the bus (sender: the well-known name) or for our own filter (signals arrive from
    systemd's unique name, so no sender there)."""
    from jeepney import MatchRule
    return MatchRule(type="signal", sender=sender, interface=MANAGER, member="JobRemoved",
                     path=MANAGER_PATH)
