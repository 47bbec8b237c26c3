"""devices: linux.resources.devices, applied in order on top of "deny everything" (runc's
start: the core passes the spec's rules already merged with the default device rules).

The ordered rule list is first reduced, by emulating the v1 kernel, to one rule set: a default
(allow or deny everything) and exceptions to it. v1 gets that set written to devices.allow /
devices.deny (on update only the difference, so running processes never lose access to a
device they keep); v2 gets it compiled into an eBPF program (bpf_devices.py). Both therefore
enforce exactly the same thing.

Two places where the v1 kernel silently differs from "last matching rule wins" are refused
instead (as runc does): removing part of a wider wildcard exception ("punching a hole"); and a
type "a" rule that is not the full "a *:* rwm" is expanded into "c" and "b" rules, because the
kernel reads any "a" line as "everything".
"""

from __future__ import annotations

from ocirt.cgroups import fs
from ocirt.cgroups.controllers import Ctx
from ocirt.cgroups.controllers._check import P, arr, boolean, obj, string
from ocirt.errors import ConfigError

V1 = "devices"
V2 = ""          # the eBPF hook is part of cgroup2 itself
KEYS = ("devices",)
F = f"{P}.devices"

Key = tuple[str, int, int]     # (type "c"|"b", major or -1, minor or -1)
ALL = "rwm"


def wanted(res: dict) -> bool:
    return res.get("devices") is not None


def _norm_access(a: str) -> str:
    return "".join(ch for ch in ALL if ch in a)


class RuleSet:
    """The v1 kernel's state: a default and a map of exceptions to it."""

    def __init__(self, default_allow: bool = False) -> None:
        self.default_allow = default_allow
        self.ex: dict[Key, str] = {}

    def apply(self, allow: bool, rtype: str, major: int, minor: int, access: str,
              where: str = F, source: str = "config.json") -> None:
        if rtype == "a":
            if major < 0 and minor < 0 and access == ALL:
                self.default_allow, self.ex = allow, {}
                return
            for t in ("c", "b"):
                self.apply(allow, t, major, minor, access, where, source)
            return
        key = (rtype, major, minor)
        if allow != self.default_allow:
            self.ex[key] = _norm_access(self.ex.get(key, "") + access)
            return
        # The rule agrees with the default: take `access` away from the exceptions it covers.
        for k, have in list(self.ex.items()):
            if k[0] != rtype:
                continue
            covered = (major < 0 or k[1] == major) and (minor < 0 or k[2] == minor)
            if covered:
                left = "".join(ch for ch in have if ch not in access)
                if left:
                    self.ex[k] = left
                else:
                    del self.ex[k]
            elif (k[1] < 0 or k[1] == major) and (k[2] < 0 or k[2] == minor) and \
                    set(have) & set(access):
                raise ConfigError(where, f"cannot {'allow' if allow else 'deny'} "
                                         f"{fmt((rtype, major, minor), access)}: it is inside "
                                         f"the wider exception {fmt(k, have)}, and cgroup "
                                         "devices rules cannot punch a hole in it", source)

    def rules(self) -> list[tuple[str, int, int, str]]:
        # In the order the config listed them: the kernel keeps v1 exceptions in the order
        # they are written, and the spec says rules apply in the listed order.
        return [(k[0], k[1], k[2], a) for k, a in self.ex.items()]


def fmt(key: Key, access: str) -> str:
    t, ma, mi = key
    return f"{t} {'*' if ma < 0 else ma}:{'*' if mi < 0 else mi} {access}"


def _num(e: dict, k: str, p: str, source: str) -> int:
    v = e.get(k)
    if v is None:
        return -1
    if isinstance(v, bool) or not isinstance(v, int) or v < -1 or v > 0xFFFFFFFF:
        raise ConfigError(f"{p}.{k}", f"must be a device number or -1, got {v!r}", source)
    return v


def parse(rules: list, source: str = "config.json", warn: bool = False) -> RuleSet:
    """The rule list as one RuleSet; `warn`: log the access letters that are dropped."""
    rs = RuleSet(default_allow=False)
    for i, e in enumerate(arr(rules, F, source)):
        p = f"{F}[{i}]"
        obj(e, p, source)
        allow = boolean(e.get("allow"), f"{p}.allow", source)
        rtype = e.get("type") or "a"
        if rtype not in ("a", "b", "c"):
            raise ConfigError(f"{p}.type", f"must be a, b or c, got {rtype!r}", source)
        access = e.get("access")
        if access is None:
            access = ALL
        string(access, f"{p}.access", source)
        unknown = "".join(sorted(set(access) - set(ALL)))
        if unknown and warn:
            # The spec names only r, w and m, but neither its schema nor runc refuses others
            # (runc's own tests write "rwa"): they grant nothing, so they are dropped.
            from ocirt.log import logger
            logger.warning(f"{p}.access: ignoring unknown device access {unknown!r} in "
                           f"{access!r} (only r, w and m exist)")
        if not _norm_access(access):
            raise ConfigError(f"{p}.access", f"must contain r, w or m, got {access!r}", source)
        rs.apply(allow, rtype, _num(e, "major", p, source), _num(e, "minor", p, source),
                 _norm_access(access), p, source)
    return rs


def validate(res: dict, version: int, ctx: Ctx) -> None:
    parse(res["devices"], ctx.source, warn=True)


def apply(d: str, res: dict, version: int, ctx: Ctx) -> None:
    rs = parse(res["devices"], ctx.source)
    if version == 2:
        from ocirt.cgroups import bpf_devices
        bpf_devices.install(d, bpf_devices.assemble(rs.default_allow, rs.rules()))
    else:
        _apply_v1(d, rs, ctx)


def current_v1(d: str) -> RuleSet | None:
    """devices.list as a RuleSet; None when the cgroup allows everything by default (the
    kernel then prints only "a *:* rwm" and hides the deny exceptions)."""
    rs = RuleSet(default_allow=False)
    for line in (fs.read_or_none(d, "devices.list") or "").splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        if parts[0] == "a":
            return None
        ma, _, mi = parts[1].partition(":")
        rs.ex[(parts[0], -1 if ma == "*" else int(ma), -1 if mi == "*" else int(mi))] = \
            _norm_access(parts[2])
    return rs


def _apply_v1(d: str, rs: RuleSet, ctx: Ctx) -> None:
    allow_f, deny_f = "devices.allow", "devices.deny"
    cur = current_v1(d) if not rs.default_allow else None
    if cur is None or rs.default_allow:
        # Reset to the new default, then list the exceptions to it.
        fs.write(d, allow_f if rs.default_allow else deny_f, "a", F, ctx.source)
        for t, ma, mi, acc in rs.rules():
            fs.write(d, deny_f if rs.default_allow else allow_f, fmt((t, ma, mi), acc), F,
                     ctx.source)
        return
    # Both deny by default: grant what is new first, then take away what is gone, so a
    # device kept in both sets stays usable throughout.
    for key, acc in rs.ex.items():
        missing = "".join(ch for ch in acc if ch not in cur.ex.get(key, ""))
        if missing:
            fs.write(d, allow_f, fmt(key, missing), F, ctx.source)
    for key, acc in cur.ex.items():
        extra = "".join(ch for ch in acc if ch not in rs.ex.get(key, ""))
        if extra:
            fs.write(d, deny_f, fmt(key, extra), F, ctx.source)
