"""process.capabilities: names -> bit masks (prepare), and the kernel calls that set them.

Five sets (runtime-spec config.md, capabilities(7)):
  bounding    limits what any later execve can grant; dropped with PR_CAPBSET_DROP (needs CAP_SETPCAP)
  permitted   superset of effective; what capset can raise into effective
  effective   checked by the kernel
  inheritable kept across execve only together with matching file inheritable bits (or ambient)
  ambient     kept across execve of a non-setuid, capability-less file: the only way a non-root
              uid keeps capabilities across execve

A name ocirt knows but this kernel does not (> /proc/sys/kernel/cap_last_cap) cannot be granted:
runtime-spec 1.1 says WARN, not fail (runc logs a warning and skips it). A string that is not a
capability name at all is an invalid value -> ConfigError naming the JSON path.
"""

from __future__ import annotations

import os

from ocirt.errors import ConfigError, SetupError
from ocirt.features_data import CAPABILITIES
from ocirt.linux import cabi
from ocirt.linux import syscalls as sc

# Index = capability number (include/uapi/linux/capability.h, Linux 5.9+: 0..40).
CAP_NAMES: tuple[str, ...] = CAPABILITIES
CAP_NUMBERS: dict[str, int] = {n: i for i, n in enumerate(CAP_NAMES)}
CAP_SETPCAP = 8
CAP_SYS_ADMIN = 21

SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(cabi.Structure):
    _fields_ = [("version", cabi.c_uint32), ("pid", cabi.c_int)]


class _Data(cabi.Structure):
    _fields_ = [("effective", cabi.c_uint32), ("permitted", cabi.c_uint32),
                ("inheritable", cabi.c_uint32)]


_libc = sc.libc()


def last_cap() -> int:
    """The highest capability number this kernel knows (40 on 5.9+)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(CAP_NAMES) - 1


def parse(caps: object, *, jpath: str = "process.capabilities", source: str = "config.json",
          kernel_last: int | None = None, warnings: list[str] | None = None) -> dict[str, int]:
    """Turn the capabilities object into {set: bitmask}.

    Absent sets are empty sets, and an absent object means no capabilities at all: runc does
    the same (a config without `capabilities` runs with every set empty), the safe reading."""
    if caps is None:
        caps = {}
    if not isinstance(caps, dict):
        raise ConfigError(jpath, "must be an object", source)
    last = last_cap() if kernel_last is None else kernel_last
    out: dict[str, int] = {}
    skipped: set[str] = set()
    for s in SETS:
        names = caps.get(s)
        mask = 0
        if names is not None:
            if not isinstance(names, list):
                raise ConfigError(f"{jpath}.{s}", "must be an array of capability names", source)
            for i, name in enumerate(names):
                if not isinstance(name, str):
                    raise ConfigError(f"{jpath}.{s}[{i}]", "must be a capability name", source)
                num = CAP_NUMBERS.get(name)
                # runtime-spec: a capability that cannot be mapped MUST be logged as a warning
                # and SHOULD NOT fail the container (runc does the same). Names ocirt does not
                # know at all are reported, with their JSON path, by
                # ocirt.config.semantic.process_warnings; here they are just left out.
                if num is None:
                    continue
                if num > last:
                    skipped.add(name)
                    continue
                mask |= 1 << num
        out[s] = mask
    if skipped and warnings is not None:
        warnings.append("ignoring capabilities unknown to this kernel (cap_last_cap=%d): %s"
                        % (last, ", ".join(sorted(skipped, key=CAP_NUMBERS.__getitem__))))
    return out


def names(mask: int) -> list[str]:
    return [n for i, n in enumerate(CAP_NAMES) if mask >> i & 1]


# --- kernel calls ------------------------------------------------------------------------

def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of the calling thread."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    if _libc.capget(cabi.byref(hdr), data) != 0:
        e = cabi.get_errno()
        raise OSError(e, os.strerror(e))
    eff = data[0].effective | data[1].effective << 32
    prm = data[0].permitted | data[1].permitted << 32
    inh = data[0].inheritable | data[1].inheritable << 32
    return eff, prm, inh


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):
        sh = 32 * i
        data[i].effective = effective >> sh & 0xFFFFFFFF
        data[i].permitted = permitted >> sh & 0xFFFFFFFF
        data[i].inheritable = inheritable >> sh & 0xFFFFFFFF
    if _libc.capset(cabi.byref(hdr), data) != 0:
        e = cabi.get_errno()
        raise OSError(e, os.strerror(e))


def drop_bounding(keep: int, last: int) -> None:
    """PR_CAPBSET_DROP every cap in 0..last not in `keep` (needs CAP_SETPCAP in effective).

    Dropping from the bounding set does not touch the current effective/permitted sets, so the
    init keeps working with its privileges until apply_caps."""
    for num in range(last + 1):
        if keep >> num & 1:
            continue
        try:
            sc.prctl(sc.PR_CAPBSET_DROP, num)
        except OSError as e:
            # EINVAL: kernel does not know this cap (cannot happen below cap_last_cap).
            if e.errno == 22:
                continue
            raise SetupError(f"dropping {CAP_NAMES[num] if num < len(CAP_NAMES) else num} "
                             f"from the bounding set: {e.strerror}") from None


def bounding() -> int:
    mask = 0
    for num in range(last_cap() + 1):
        try:
            if sc.prctl(sc.PR_CAPBSET_READ, num):
                mask |= 1 << num
        except OSError:
            pass
    return mask


def set_ambient(mask: int, last: int) -> None:
    """Clear the ambient set, then raise exactly `mask` (each cap must be in permitted and
    inheritable, else EPERM)."""
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for num in range(last + 1):
        if mask >> num & 1:
            try:
                sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, num)
            except OSError as e:
                raise SetupError(f"raising ambient capability {CAP_NAMES[num]}: {e.strerror} "
                                 "(an ambient capability must also be permitted and "
                                 "inheritable)") from None
