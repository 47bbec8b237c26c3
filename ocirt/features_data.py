"""Static parts of the `ocirt features` document (runtime-spec features.md, features-linux.md).

The spec asks for content decided when the runtime is built, not by probing the host, so these
are constants: importing this module costs nothing (no ctypes, no libseccomp). The lists match
what ocirt's code accepts: tests/unit/test_proc_features.py checks them against
ocirt.process.caps and ocirt.security.seccomp so they cannot drift.

features_linux() returns the `linux` object without `cgroup`, `intelRdt`, `memoryPolicy`,
`mountExtensions` and `netDevices`, which the features verb fills in.
"""

from __future__ import annotations

# linux.namespaces[].type values (config-linux.md).
NAMESPACES = ("cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts")

# CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40), in kernel order like runc's list.
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

SECCOMP_ACTIONS = (
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
)

SECCOMP_OPERATORS = (
    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
)

# The architectures libseccomp 2.5.x can build filters for (ocirt compiles with libseccomp).
# 2.6.0 adds LOONGARCH64, M68K, SH and SHEB; they are not listed until ocirt requires 2.6.
SECCOMP_ARCHS = (
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
)

# All four flags of runtime-spec 1.3. ocirt loads the filter with the raw seccomp(2) syscall, so
# support depends only on the kernel (TSYNC 3.17, LOG 4.14, SPEC_ALLOW 4.17,
# WAIT_KILLABLE_RECV 5.19), not on libseccomp's API level.
SECCOMP_KNOWN_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)
SECCOMP_SUPPORTED_FLAGS = SECCOMP_KNOWN_FLAGS

# runtime-spec config.md "Linux mount options" table (1.3.0) as ocirt.rootfs.options accepts it:
# plus `rnodev` (the table omits it, runc lists it) and runc's `acl`/`noacl` (test_proc_features.py
# keeps this list and rootfs/options.py in step).
# Filesystem-specific data options (mode=, size=, ...) are not listed, as features.md asks.
MOUNT_OPTIONS = (
    "acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap",
    "iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev", "nodiratime", "noexec",
    "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
    "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount",
    "rexec", "ridmap", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime",
    "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw",
    "rshared", "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared",
    "silent", "slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
)


def features_linux() -> dict:
    """The `linux` object of the features document, minus cgroup, intelRdt, memoryPolicy,
    mountExtensions and netDevices (filled in by the features verb)."""
    return {
        "namespaces": list(NAMESPACES),
        "capabilities": list(CAPABILITIES),
        "seccomp": {
            "enabled": True,
            "actions": list(SECCOMP_ACTIONS),
            "operators": list(SECCOMP_OPERATORS),
            "archs": list(SECCOMP_ARCHS),
            "knownFlags": list(SECCOMP_KNOWN_FLAGS),
            "supportedFlags": list(SECCOMP_SUPPORTED_FLAGS),
        },
        # Whether ocirt supports applying the labels, not whether the host has the LSM
        # (features-linux.md: "irrelevant to the availability ... on the host").
        "apparmor": {"enabled": True},
        "selinux": {"enabled": True},
    }
