"""linux.netDevices: host network interfaces moved into the container's network namespace.

At create, once the init has made its new network namespace, the runtime moves each named
interface there (renamed when `name` says so) and gives it back its addresses and its up
state, which the kernel drops on a namespace change. At delete, while the namespace still
exists, each one goes back to the runtime's network namespace under its original name, in the
same way (as runc 1.4 and crun do). Once the namespace is gone the kernel has destroyed a
virtual interface or returned a physical one to the initial namespace: not an error.

Everything that can be known before create has side effects is checked by check(): a missing
interface, two interfaces given the same name, no new network namespace. The netlink work uses
pyroute2, imported only for configs that have netDevices.
"""

from __future__ import annotations

import os
import socket

from ocirt.errors import ConfigError, SetupError
from ocirt.linux import syscalls as sc
from ocirt.log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_FIELD = "linux.netDevices"
_IFF_UP = 0x1
_RT_SCOPE_LINK = 253   # link-local addresses: the kernel makes them itself when the link is up


def _target(name: str, spec: dict) -> str:
    return spec.get("name") or name


def check(config: dict, source: str = "config.json") -> None:
    """ConfigError for what would make the move fail, before anything exists."""
    linux = config.get("linux") or {}
    devices = linux.get("netDevices") or {}
    if not devices:
        return
    net = [n for n in linux.get("namespaces") or () if n.get("type") == "network"]
    if not net or net[0].get("path"):
        raise ConfigError(_FIELD, "needs a new network namespace (linux.namespaces entry of "
                          "type network without a path)", source)
    seen: dict[str, str] = {}
    for name, spec in devices.items():
        target = _target(name, spec)
        if name == "lo" or target == "lo":
            raise ConfigError(f"{_FIELD}.{name}", "the loopback device cannot be moved or "
                              "replaced: every network namespace has its own", source)
        if target in seen:
            raise ConfigError(f"{_FIELD}.{name}", f"the name {target!r} is already given to "
                              f"{_FIELD}.{seen[target]}", source)
        seen[target] = name
        try:
            socket.if_nametoindex(name)
        except OSError:
            raise ConfigError(f"{_FIELD}.{name}", f"no network device {name!r} in the "
                              "runtime's network namespace", source) from None


def _pyroute2() -> Any:
    from ocirt import thirdparty
    thirdparty.require("pyroute2", "python3-pyroute2", _FIELD)
    from pyroute2 import IPRoute
    return IPRoute


class _InNetns:
    """Run the calling thread in another network namespace for a while: netlink sockets opened
    inside talk to that namespace. setns(2) of a network namespace affects this thread only."""

    def __init__(self, ns_fd: int) -> None:
        self.ns_fd = ns_fd
        self.home = -1

    def __enter__(self) -> "_InNetns":
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        sc.setns(self.ns_fd, sc.CLONE_NEWNET)
        return self

    def __exit__(self, *exc: object) -> None:
        sc.setns(self.home, sc.CLONE_NEWNET)
        os.close(self.home)


class _Link:
    """What a namespace change drops and move() restores: addresses and the up flag."""

    def __init__(self, ipr: Any, index: int) -> None:
        self.up = bool(ipr.get_links(index)[0]["flags"] & _IFF_UP)
        self.addrs = []
        for a in ipr.get_addr(index=index):
            if a["scope"] == _RT_SCOPE_LINK:
                continue
            addr = {"address": a.get_attr("IFA_ADDRESS"), "prefixlen": a["prefixlen"]}
            local = a.get_attr("IFA_LOCAL")
            if local and local != addr["address"]:   # point-to-point: local and peer
                addr["local"] = local
            if a.get_attr("IFA_BROADCAST"):
                addr["broadcast"] = a.get_attr("IFA_BROADCAST")
            self.addrs.append(addr)

    def restore(self, ipr: Any, index: int) -> None:
        for addr in self.addrs:
            ipr.addr("add", index=index, **addr)
        if self.up:
            ipr.link("set", index=index, state="up")


def _move(name: str, new_name: str, src_ns: int | None, dst_ns: int) -> None:
    """Move `name` from the namespace src_ns (None: ours) to dst_ns, as `new_name`, with its
    addresses and up state. Netlink errors are raised as OSError."""
    IPRoute = _pyroute2()
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        _move_link(IPRoute, name, new_name, src_ns, dst_ns)
    except NetlinkError as e:
        raise OSError(e.code, os.strerror(e.code)) from None


def _move_link(IPRoute: Any, name: str, new_name: str, src_ns: int | None,
               dst_ns: int) -> None:
    enter = _InNetns(src_ns) if src_ns is not None else None
    if enter:
        enter.__enter__()
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise SetupError(f"{_FIELD}: no network device {name!r}")
            link = _Link(ipr, found[0])
            # By fd, not pid: a pid names the namespace of its main thread, which may be
            # inside src_ns just now.
            ipr.link("set", index=found[0], net_ns_fd=dst_ns, ifname=new_name)
    finally:
        if enter:
            enter.__exit__()
    with _InNetns(dst_ns), IPRoute() as ipr:
        found = ipr.link_lookup(ifname=new_name)
        if found:
            link.restore(ipr, found[0])


def _netns_fd(pid: int) -> int:
    return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def attach(config: dict, init_pid: int) -> int:
    """Move every device of linux.netDevices into the init's network namespace and return an
    fd of that namespace, which keeps it (and the devices) alive even if the init dies: a
    create that fails later gives them back through it with detach(). On a failure here the
    ones already moved go back before the error is raised."""
    theirs = _netns_fd(init_pid)
    try:
        _attach_all(config, theirs)
    except BaseException:
        os.close(theirs)
        raise
    return theirs


def _attach_all(config: dict, theirs: int) -> None:
    devices = (config.get("linux") or {}).get("netDevices") or {}
    moved: dict[str, dict] = {}
    try:
        for name, spec in devices.items():
            target = _target(name, spec)
            try:
                _move(name, target, None, theirs)
            except OSError as e:
                raise SetupError(f"{_FIELD}.{name}: cannot move it into the container's "
                                 f"network namespace as {target!r}: {_reason(e)}") from None
            logger.debug("netDevices: %s moved into the container as %s", name, target)
            moved[name] = spec
    except BaseException:
        detach({"linux": {"netDevices": moved}}, theirs)
        raise


def detach(config: dict, theirs: int) -> None:
    """Bring every device back from the network namespace `theirs` under its original name.
    A device that is no longer there is not an error."""
    devices = (config.get("linux") or {}).get("netDevices") or {}
    ours = _netns_fd(os.getpid())
    try:
        for name, spec in reversed(list(devices.items())):
            target = _target(name, spec)
            try:
                _move(target, name, theirs, ours)
            except SetupError:
                logger.debug("netDevices: %s is no longer in the container", target)
            except OSError as e:
                logger.warning(f"{_FIELD}.{name}: could not move {target!r} back: {_reason(e)}")
    finally:
        os.close(ours)


def detach_from(config: dict, init_pid: int) -> None:
    """detach() from the namespace of a living init (delete, before it kills the init)."""
    try:
        theirs = _netns_fd(init_pid)
    except OSError:
        return   # the namespace is gone: the kernel has already dealt with the devices
    try:
        detach(config, theirs)
    finally:
        os.close(theirs)


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()
