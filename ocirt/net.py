"""Network setup the init does itself: bring `lo` up in a new network namespace.

One ioctl on a socket, instead of netlink through pyroute2 (350 ms to import), keeps this off
the start-up budget.
"""

from __future__ import annotations

import fcntl
import struct

import _socket  # the C module: `socket` itself imports enum and selectors (milliseconds)

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def link_up(name: str = "lo") -> None:
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        req = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))
    finally:
        s.close()
