"""Config values that reach a system call must be representable there.

A string passed to the kernel or to execve is a C string: a NUL byte would silently cut it
(a seccomp rule for "read\\0x" would become one for "read", a hostname "a\\0b" would be "a"), or
make Python raise where no one catches it. Numbers must fit the kernel's own types, which are
narrower than the JSON Schema's (a device number has 12 + 20 bits, a group list at most
NGROUPS_MAX entries, a window size 16 bits). Each rule names the JSON path, before any side
effect of create.
"""

from __future__ import annotations

from ocirt.config.semantic import format_path
from ocirt.errors import ConfigError
from ocirt.hooks import KINDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Union

    Parts = tuple[Union[str, int], ...]

NGROUPS_MAX = 65536        # include/uapi/linux/limits.h
HOST_NAME_MAX = 64         # __NEW_UTS_LEN: sethostname(2), setdomainname(2)
MAX_DEV_MAJOR = (1 << 12) - 1   # mknod(2) takes a 32-bit dev_t: 12 bits of major,
MAX_DEV_MINOR = (1 << 20) - 1   # 20 of minor (new_decode_dev)
MAX_WINSIZE = (1 << 16) - 1     # struct winsize holds unsigned shorts


def _fail(parts: Parts, message: str, source: str) -> ConfigError:
    return ConfigError(format_path(parts), message, source)


def _c_string(value: object, parts: Parts, source: str) -> None:
    if type(value) is str and "\0" in value:
        raise _fail(parts, "contains a NUL byte", source)


def _c_strings(values: list[str], parts: Parts, source: str) -> None:
    if "\0" in "".join(values):  # the schema made them strings; one search for the common case
        for i, v in enumerate(values):
            _c_string(v, parts + (i,), source)


def check_config(doc: dict[str, Any], source: str = "config.json") -> None:
    """Run after the schema and the semantic rules: every field has its JSON type here."""
    root = doc.get("root")
    if root is not None:
        _c_string(root["path"], ("root", "path"), source)
    for field in ("hostname", "domainname"):
        name = doc.get(field, "")
        _c_string(name, (field,), source)
        if len(name.encode()) > HOST_NAME_MAX:
            raise _fail((field,), f"is longer than the kernel's {HOST_NAME_MAX} bytes", source)
    hooks = doc.get("hooks", {})
    for kind in KINDS:  # other kinds are never run
        for i, h in enumerate(hooks.get(kind, ())):
            at = ("hooks", kind, i)
            _c_string(h["path"], at + ("path",), source)
            _c_strings(h.get("args", ()), at + ("args",), source)
            _c_strings(h.get("env", ()), at + ("env",), source)
    proc = doc.get("process")
    if proc is not None:
        check_process(proc, ("process",), source)
    _check_linux(doc.get("linux", {}), source)


def check_process(p: dict[str, Any], at: Parts = (), source: str = "process.json") -> None:
    for field in ("apparmorProfile", "selinuxLabel"):
        _c_string(p.get(field), at + (field,), source)
    groups = p.get("user", {}).get("additionalGids", ())
    if len(groups) > NGROUPS_MAX:
        raise _fail(at + ("user", "additionalGids"),
                    f"{len(groups)} groups are more than the kernel's limit of {NGROUPS_MAX}",
                    source)
    for field in ("height", "width"):
        n = p.get("consoleSize", {}).get(field, 0)
        if n > MAX_WINSIZE:
            raise _fail(at + ("consoleSize", field), f"{n} is more than {MAX_WINSIZE}", source)


def _check_linux(lx: dict[str, Any], source: str) -> None:
    at: Parts = ("linux",)
    for i, ns in enumerate(lx.get("namespaces", ())):
        _c_string(ns.get("path"), at + ("namespaces", i, "path"), source)
    for field in ("maskedPaths", "readonlyPaths"):
        _c_strings(lx.get(field, ()), at + (field,), source)
    _c_string(lx.get("mountLabel"), at + ("mountLabel",), source)
    for key, value in lx.get("sysctl", {}).items():
        _c_string(value, at + ("sysctl", key), source)
    seccomp = lx.get("seccomp")
    if seccomp is not None:
        _c_string(seccomp.get("listenerPath"), at + ("seccomp", "listenerPath"), source)
        rules = seccomp.get("syscalls", ())
        if "\0" in "".join(["".join(rule["names"]) for rule in rules]):
            for i, rule in enumerate(rules):
                _c_strings(rule["names"], at + ("seccomp", "syscalls", i, "names"), source)
    for i, d in enumerate(lx.get("devices", ())):
        for field, top in (("major", MAX_DEV_MAJOR), ("minor", MAX_DEV_MINOR)):
            n = d.get(field, 0)
            if not 0 <= n <= top:
                raise _fail(at + ("devices", i, field),
                            f"{n} is outside the kernel's device {field} numbers 0..{top}", source)
