"""config.json mount options -> what the kernel wants (runtime-spec config.md, runc's table).

mount(8) flags become mount attributes (per mount) or superblock flags (per filesystem),
propagation options become an ordered list of MS_* changes, the recursive `r*` options become
mount_setattr(AT_RECURSIVE) attributes, and anything unknown is filesystem data, as the spec
says. Pure functions, no I/O.
"""

from __future__ import annotations

from ocirt.linux import syscalls as sc

# name -> (clear?, MS_* flag), as runc's parseMountOptions.
FLAGS: dict[str, tuple[bool, int]] = {
    "acl": (False, sc.MS_POSIXACL), "async": (True, sc.MS_SYNCHRONOUS),
    "atime": (True, sc.MS_NOATIME), "bind": (False, sc.MS_BIND), "defaults": (False, 0),
    "dev": (True, sc.MS_NODEV), "diratime": (True, sc.MS_NODIRATIME),
    "dirsync": (False, sc.MS_DIRSYNC), "exec": (True, sc.MS_NOEXEC),
    "iversion": (False, sc.MS_I_VERSION), "lazytime": (False, sc.MS_LAZYTIME),
    "loud": (True, sc.MS_SILENT), "mand": (False, sc.MS_MANDLOCK),
    "noacl": (True, sc.MS_POSIXACL), "noatime": (False, sc.MS_NOATIME),
    "nodev": (False, sc.MS_NODEV), "nodiratime": (False, sc.MS_NODIRATIME),
    "noexec": (False, sc.MS_NOEXEC), "noiversion": (True, sc.MS_I_VERSION),
    "nolazytime": (True, sc.MS_LAZYTIME), "nomand": (True, sc.MS_MANDLOCK),
    "norelatime": (True, sc.MS_RELATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "nosuid": (False, sc.MS_NOSUID), "nosymfollow": (False, sc.MS_NOSYMFOLLOW),
    "rbind": (False, sc.MS_BIND | sc.MS_REC), "relatime": (False, sc.MS_RELATIME),
    "remount": (False, sc.MS_REMOUNT), "ro": (False, sc.MS_RDONLY),
    "rw": (True, sc.MS_RDONLY), "silent": (False, sc.MS_SILENT),
    "strictatime": (False, sc.MS_STRICTATIME), "suid": (True, sc.MS_NOSUID),
    "sync": (False, sc.MS_SYNCHRONOUS),
}

PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

# name -> (clear?, MOUNT_ATTR_*), applied with mount_setattr(AT_RECURSIVE).
RECURSIVE: dict[str, tuple[bool, int]] = {
    "rro": (False, sc.MOUNT_ATTR_RDONLY), "rrw": (True, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, sc.MOUNT_ATTR_NOSUID), "rsuid": (True, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (False, sc.MOUNT_ATTR_NODEV), "rdev": (True, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (False, sc.MOUNT_ATTR_NOEXEC), "rexec": (True, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, sc.MOUNT_ATTR_NODIRATIME), "rdiratime": (True, sc.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, sc.MOUNT_ATTR_RELATIME), "rnorelatime": (True, sc.MOUNT_ATTR_RELATIME),
    "rnoatime": (False, sc.MOUNT_ATTR_NOATIME), "ratime": (True, sc.MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, sc.MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, sc.MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, sc.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, sc.MOUNT_ATTR_NOSYMFOLLOW),
}
_ATIME_OPTS = {"rrelatime", "rnorelatime", "rnoatime", "ratime", "rstrictatime",
               "rnostrictatime"}

# idmapped bind mounts: the top mount only, or every mount of the tree (ocirt.rootfs.idmapped)
IDMAP = ("idmap", "ridmap")

_ATIME_MS = sc.MS_NOATIME | sc.MS_STRICTATIME | sc.MS_RELATIME
# MS_* bits that are properties of the mount (not of the filesystem) and their attributes.
_MNT_ATTR = ((sc.MS_RDONLY, sc.MOUNT_ATTR_RDONLY), (sc.MS_NOSUID, sc.MOUNT_ATTR_NOSUID),
             (sc.MS_NODEV, sc.MOUNT_ATTR_NODEV), (sc.MS_NOEXEC, sc.MOUNT_ATTR_NOEXEC),
             (sc.MS_NODIRATIME, sc.MOUNT_ATTR_NODIRATIME),
             (sc.MS_NOSYMFOLLOW, sc.MOUNT_ATTR_NOSYMFOLLOW))
# Superblock flags as fsconfig(FSCONFIG_SET_FLAG) spells them.
_SB_FLAGS = ((sc.MS_RDONLY, "ro"), (sc.MS_SYNCHRONOUS, "sync"), (sc.MS_DIRSYNC, "dirsync"),
             (sc.MS_LAZYTIME, "lazytime"), (sc.MS_MANDLOCK, "mand"), (sc.MS_POSIXACL, "posixacl"))


class MountOptions:
    """Parsed options of one mount. A plain slotted class: dataclass creation alone would
    cost milliseconds on every container start."""

    __slots__ = ("flags", "cleared", "propagation", "rec_set", "rec_clr", "data", "tmpcopyup",
                 "idmap")

    def __init__(self, flags: int = 0, cleared: int = 0, propagation: tuple[int, ...] = (),
                 rec_set: int = 0, rec_clr: int = 0, data: tuple[str, ...] = (),
                 tmpcopyup: bool = False, idmap: str = "") -> None:
        self.flags = flags              # MS_* requested
        self.cleared = cleared          # MS_* explicitly turned off (rw, suid, dev, ...)
        self.propagation = propagation  # MS_* propagation changes, in order
        self.rec_set = rec_set          # MOUNT_ATTR_* for AT_RECURSIVE
        self.rec_clr = rec_clr
        self.data = data                # filesystem parameters, in order
        self.tmpcopyup = tmpcopyup
        self.idmap = idmap              # "", "idmap" or "ridmap"

    def __repr__(self) -> str:
        return "MountOptions(" + ", ".join(f"{k}={getattr(self, k)!r}"
                                           for k in self.__slots__) + ")"

    @property
    def bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND)

    @property
    def recursive(self) -> bool:
        return bool(self.flags & sc.MS_REC)

    @property
    def readonly(self) -> bool:
        return bool(self.flags & sc.MS_RDONLY)

    def without(self, flag: int) -> "MountOptions":
        return MountOptions(self.flags & ~flag, self.cleared, self.propagation, self.rec_set,
                            self.rec_clr, self.data, self.tmpcopyup, self.idmap)

    def with_flags(self, flag: int) -> "MountOptions":
        return MountOptions(self.flags | flag, self.cleared & ~flag, self.propagation,
                            self.rec_set, self.rec_clr, self.data, self.tmpcopyup, self.idmap)

    def fresh_attrs(self) -> int:
        """fsmount() attributes for a new mount: mount(2) semantics, relatime by default."""
        attr = 0
        for ms, ma in _MNT_ATTR:
            if self.flags & ms:
                attr |= ma
        return attr | _atime_attr(self.flags)

    def sb_flags(self) -> list[str]:
        return [name for ms, name in _SB_FLAGS if self.flags & ms]

    def bind_attrs(self) -> tuple[int, int]:
        """(set, clear) for mount_setattr on a bind: only what the options name changes;
        the rest is inherited from the source, so flags the kernel locks (nosuid, nodev... of
        a mount from a more privileged namespace) are never cleared by accident."""
        aset = aclr = 0
        for ms, ma in _MNT_ATTR:
            if self.flags & ms:
                aset |= ma
            elif self.cleared & ms:
                aclr |= ma
        if (self.flags | self.cleared) & _ATIME_MS or self.cleared & sc.MS_NOATIME:
            aclr |= sc.MOUNT_ATTR__ATIME
            aset |= _atime_attr(self.flags)
        return aset, aclr

    def data_string(self) -> str:
        return ",".join(self.data)


def _atime_attr(flags: int) -> int:
    if flags & sc.MS_NOATIME:
        return sc.MOUNT_ATTR_NOATIME
    if flags & sc.MS_STRICTATIME:
        return sc.MOUNT_ATTR_STRICTATIME
    return sc.MOUNT_ATTR_RELATIME


def parse(options: list[str]) -> MountOptions:
    """Raises ValueError naming an option the runtime refuses."""
    flags = cleared = rec_set = rec_clr = 0
    prop: list[int] = []
    data: list[str] = []
    copyup = False
    idmap = ""
    for opt in options:
        if opt in FLAGS:
            clear, f = FLAGS[opt]
            if clear:
                flags &= ~f
                cleared |= f
            else:
                flags |= f
                cleared &= ~f
        elif opt in PROPAGATION:
            prop.append(PROPAGATION[opt])
        elif opt in RECURSIVE:
            clear, a = RECURSIVE[opt]
            if opt in _ATIME_OPTS:
                # The kernel takes an atime mode only together with a clear of the whole field.
                rec_clr |= sc.MOUNT_ATTR__ATIME
                rec_set = (rec_set & ~sc.MOUNT_ATTR__ATIME) | (0 if clear else a)
            elif clear:
                rec_clr |= a
                rec_set &= ~a
            else:
                rec_set |= a
                rec_clr &= ~a
        elif opt == "tmpcopyup":
            copyup = True
        elif opt in IDMAP:
            idmap = opt
        else:
            data.append(opt)
    return MountOptions(flags, cleared, tuple(prop), rec_set, rec_clr, tuple(data), copyup, idmap)
