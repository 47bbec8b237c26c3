"""linux.seccomp: OCI profile -> raw classic-BPF program (at prepare), loaded with seccomp(2) (at exec).

Why libseccomp (through ctypes) and not our own BPF assembler: a correct filter needs per-arch
syscall tables (x86_64 + x86 + x32 in one filter, the x32 bit, multiplexed socketcall/ipc on
32-bit arches), 64-bit argument comparisons split into two 32-bit halves with the right
ordering of hi/lo checks for LT/LE/GT/GE, and binary-tree dispatch for 300+ syscalls. libseccomp
(2.5.4 here; the same library runc and crun link) gets all of that right and is what the
features document's arch/action lists describe. We only use it to *compile*:
seccomp_export_bpf() writes the program into a memfd at prepare time, in the init before
pivot_root while the library is reachable. Loading later is one raw seccomp(2) syscall on a
prebuilt buffer: no library call, no import, no allocation between loading the filter and
execve beyond what Python itself does.

Semantics follow runc (libcontainer/seccomp/seccomp_linux.go):
  * a syscall name this libseccomp cannot resolve is skipped (runc logs it at debug level);
  * a rule whose action equals the default action is skipped;
  * several conditions on the *same* argument index are added as separate rules (OR), as runc
    does, because libseccomp cannot AND two comparisons of one argument; otherwise all
    conditions of an entry form one rule (AND);
  * errnoRet defaults to EPERM for SCMP_ACT_ERRNO / SCMP_ACT_TRACE; errnoRet on any other action
    is an error; SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD;
  * libseccomp's binary-tree optimisation is enabled above 32 syscall names;
  * unless the default action is ALLOW, LOG or TRACE, a syscall numbered above the largest one
    the profile names (per architecture) fails with ENOSYS, so libc falls back to older
    syscalls (runc's patchbpf stub, ocirt/security/enosys.py).
Load flags: TSYNC, LOG, SPEC_ALLOW and WAIT_KILLABLE_RECV map to SECCOMP_FILTER_FLAG_*;
NEW_LISTENER is added when any rule uses SCMP_ACT_NOTIFY (plus TSYNC_ESRCH when TSYNC is also
set: the kernel refuses TSYNC|NEW_LISTENER otherwise). WAIT_KILLABLE_RECV is only valid with a
listener, so without SCMP_ACT_NOTIFY it is dropped (it has nothing to act on).
"""

from __future__ import annotations

import os

from ocirt.errors import ConfigError, SetupError
from ocirt.linux import cabi
from ocirt.linux import syscalls as sc

# libseccomp action values (seccomp.h); errno/trace data go in the low 16 bits.
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_NOTIFY = 0x7FC00000
ACT_ALLOW = 0x7FFF0000

ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
    "SCMP_ACT_LOG": ACT_LOG,
    "SCMP_ACT_NOTIFY": ACT_NOTIFY,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

# OCI name -> libseccomp arch token (AUDIT_ARCH_*). Exactly the archs libseccomp 2.5.x knows.
ARCHES: dict[str, int] = {
    "SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X32": 0x4000003E,
    "SCMP_ARCH_ARM": 0x40000028, "SCMP_ARCH_AARCH64": 0xC00000B7,
    "SCMP_ARCH_MIPS": 0x00000008, "SCMP_ARCH_MIPS64": 0x80000008,
    "SCMP_ARCH_MIPS64N32": 0xA0000008, "SCMP_ARCH_MIPSEL": 0x40000008,
    "SCMP_ARCH_MIPSEL64": 0xC0000008, "SCMP_ARCH_MIPSEL64N32": 0xE0000008,
    "SCMP_ARCH_PPC": 0x00000014, "SCMP_ARCH_PPC64": 0x80000015,
    "SCMP_ARCH_PPC64LE": 0xC0000015, "SCMP_ARCH_S390": 0x00000016,
    "SCMP_ARCH_S390X": 0x80000016, "SCMP_ARCH_PARISC": 0x0000000F,
    "SCMP_ARCH_PARISC64": 0x8000000F, "SCMP_ARCH_RISCV64": 0xC00000F3,
}

SECCOMP_SET_MODE_FILTER = 1
FILTER_FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
FLAG_TSYNC = 1
FLAG_NEW_LISTENER = 8
FLAG_TSYNC_ESRCH = 16
FLAG_WAIT_KILLABLE_RECV = 32

# Syscalls the init itself makes after loading the filter to hand the listener fd to the
# runtime (runc refuses NOTIFY on "write" for the same reason): notifying them would block the
# init forever, because the agent has not received the listener yet.
NOTIFY_FORBIDDEN = ("write", "sendmsg")

# libseccomp attributes
_FLTATR_CTL_NNP = 3
_FLTATR_CTL_OPTIMIZE = 8
_SCMP_ERROR = -1  # __NR_SCMP_ERROR


class _ArgCmp(cabi.Structure):
    _fields_ = [("arg", cabi.c_uint), ("op", cabi.c_int),
                ("datum_a", cabi.c_uint64), ("datum_b", cabi.c_uint64)]


class _SockFprog(cabi.Structure):
    _fields_ = [("len", cabi.c_ushort), ("filter", cabi.c_void_p)]


class Filter:
    """A compiled profile: everything apply-time needs, plain data (fork/pickle friendly)."""

    __slots__ = ("bpf", "flags", "notify", "listener_path", "listener_metadata",
                 "default_action", "skipped", "compile_seconds", "cached")

    def __init__(self, bpf: bytes, flags: int, notify: bool = False, listener_path: str = "",
                 listener_metadata: str = "", default_action: str = "",
                 skipped: list[str] | None = None, compile_seconds: float = 0.0,
                 cached: bool = False) -> None:
        self.bpf = bpf                      # raw struct sock_filter array
        self.flags = flags                  # seccomp(2) flags, NEW_LISTENER included when needed
        self.notify = notify
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.default_action = default_action
        self.skipped = skipped or []        # names libseccomp could not resolve (runc: debug log)
        self.compile_seconds = compile_seconds
        self.cached = cached                # bpf came from the compile cache

    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, st):
        for k, v in st.items():
            setattr(self, k, v)


class _Rule:
    __slots__ = ("names", "action", "conds", "jpath")

    def __init__(self, names, action, conds, jpath):
        self.names = names
        self.action = action
        self.conds = conds          # [(index, op, datum_a, datum_b)]
        self.jpath = jpath


# --- validation (pure python) -----------------------------------------------------------------

def _uint(v, bits) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << bits)


def _action(name, errno_ret, jpath, errno_path, source) -> int:
    if name not in ACTIONS:
        raise ConfigError(jpath, f"unknown seccomp action {name!r}", source)
    if errno_ret is not None:
        if name not in _WITH_ERRNO:
            raise ConfigError(errno_path, f"errnoRet is not supported with action {name}", source)
        if not _uint(errno_ret, 16):
            raise ConfigError(errno_path, f"invalid errno {errno_ret!r}", source)
    if name in _WITH_ERRNO:
        return ACTIONS[name] | (1 if errno_ret is None else errno_ret)   # EPERM by default
    return ACTIONS[name]


def validate(prof: object, jpath: str = "linux.seccomp", source: str = "config.json"):
    """Check the profile completely; returns (default_action, arches, flags, rules, notify)."""
    if not isinstance(prof, dict):
        raise ConfigError(jpath, "must be an object", source)
    dname = prof.get("defaultAction")
    if dname is None:
        raise ConfigError(jpath + ".defaultAction", "is required", source)
    if dname == "SCMP_ACT_NOTIFY":
        raise ConfigError(jpath + ".defaultAction",
                          "SCMP_ACT_NOTIFY cannot be used as the default action", source)
    default = _action(dname, prof.get("defaultErrnoRet"), jpath + ".defaultAction",
                      jpath + ".defaultErrnoRet", source)
    arches = []
    archs = prof.get("architectures") or []
    if not isinstance(archs, list):
        raise ConfigError(jpath + ".architectures", "must be an array", source)
    for i, a in enumerate(archs):
        if a not in ARCHES:
            raise ConfigError(f"{jpath}.architectures[{i}]",
                              f"unsupported seccomp architecture {a!r}", source)
        arches.append(ARCHES[a])
    flags = 0
    fl = prof.get("flags") or []
    if not isinstance(fl, list):
        raise ConfigError(jpath + ".flags", "must be an array", source)
    for i, f in enumerate(fl):
        if f not in FILTER_FLAGS:
            raise ConfigError(f"{jpath}.flags[{i}]", f"unsupported seccomp flag {f!r}", source)
        flags |= FILTER_FLAGS[f]
    rules: list[_Rule] = []
    notify = False
    calls = prof.get("syscalls") or []
    if not isinstance(calls, list):
        raise ConfigError(jpath + ".syscalls", "must be an array", source)
    for i, call in enumerate(calls):
        p = f"{jpath}.syscalls[{i}]"
        if not isinstance(call, dict):
            raise ConfigError(p, "must be an object", source)
        names = call.get("names")
        if not isinstance(names, list) or not names:
            raise ConfigError(p + ".names", "must be a non-empty array of syscall names", source)
        for j, n in enumerate(names):
            if not isinstance(n, str) or not n:
                raise ConfigError(f"{p}.names[{j}]", f"invalid syscall name {n!r}", source)
        aname = call.get("action")
        if aname is None:
            raise ConfigError(p + ".action", "is required", source)
        act = _action(aname, call.get("errnoRet"), p + ".action", p + ".errnoRet", source)
        if aname == "SCMP_ACT_NOTIFY":
            notify = True
            for j, n in enumerate(names):
                if n in NOTIFY_FORBIDDEN:
                    raise ConfigError(f"{p}.names[{j}]",
                                      f"SCMP_ACT_NOTIFY cannot be used for the {n} syscall "
                                      "(the runtime needs it to pass the listener fd)", source)
        conds = []
        args = call.get("args") or []
        if not isinstance(args, list):
            raise ConfigError(p + ".args", "must be an array", source)
        for k, a in enumerate(args):
            ap = f"{p}.args[{k}]"
            if not isinstance(a, dict):
                raise ConfigError(ap, "must be an object", source)
            idx = a.get("index")
            if not _uint(idx, 32) or idx > 5:
                raise ConfigError(ap + ".index", f"invalid argument index {idx!r} (0-5)", source)
            op = a.get("op")
            if op not in OPERATORS:
                raise ConfigError(ap + ".op", f"unknown seccomp operator {op!r}", source)
            v1, v2 = a.get("value", 0), a.get("valueTwo", 0)
            if not _uint(v1, 64):
                raise ConfigError(ap + ".value", f"must be an unsigned 64-bit integer, got {v1!r}",
                                  source)
            if not _uint(v2, 64):
                raise ConfigError(ap + ".valueTwo",
                                  f"must be an unsigned 64-bit integer, got {v2!r}", source)
            conds.append((idx, OPERATORS[op], v1, v2))
        rules.append(_Rule(names, act, conds, p))
    lpath = prof.get("listenerPath")
    if lpath is not None and not isinstance(lpath, str):
        raise ConfigError(jpath + ".listenerPath", "must be a string", source)
    if notify and not lpath:
        raise ConfigError(jpath + ".listenerPath", "is required when SCMP_ACT_NOTIFY is used",
                          source)
    meta = prof.get("listenerMetadata")
    if meta is not None and not isinstance(meta, str):
        raise ConfigError(jpath + ".listenerMetadata", "must be a string", source)
    return default, arches, flags, rules, notify


# --- libseccomp (loaded only when a profile is compiled) --------------------------------------

_LIB = None


def _lib():
    global _LIB
    if _LIB is None:
        try:
            lib = cabi.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise SetupError(f"linux.seccomp is set but libseccomp cannot be loaded: {e}") from None
        lib.seccomp_init.restype = cabi.c_void_p
        lib.seccomp_init.argtypes = [cabi.c_uint32]
        lib.seccomp_release.argtypes = [cabi.c_void_p]
        lib.seccomp_release.restype = None
        lib.seccomp_arch_add.argtypes = [cabi.c_void_p, cabi.c_uint32]
        lib.seccomp_arch_native.restype = cabi.c_uint32
        lib.seccomp_attr_set.argtypes = [cabi.c_void_p, cabi.c_int, cabi.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [cabi.c_char_p]
        lib.seccomp_syscall_resolve_name.restype = cabi.c_int
        lib.seccomp_rule_add_array.argtypes = [cabi.c_void_p, cabi.c_uint32, cabi.c_int,
                                               cabi.c_uint, cabi.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [cabi.c_void_p, cabi.c_int]
        _LIB = lib
    return _LIB


def libseccomp_version() -> str:
    lib = _lib()
    lib.seccomp_version.restype = cabi.POINTER(cabi.c_uint * 3)
    return ".".join(str(x) for x in lib.seccomp_version().contents)


def compile(prof: object, jpath: str = "linux.seccomp", source: str = "config.json",
            cache_dir: str | None = None) -> Filter:
    """Validate `prof` and compile it to a raw BPF program.

    With `cache_dir`, the program is looked up in / stored to a compile cache (see _cache_read)
    keyed by the rule-relevant part of the profile, the libseccomp version and the native arch:
    libseccomp needs ~10-40 ms for a Docker-sized profile, a cache hit well under 1 ms."""
    import time
    t0 = time.perf_counter()
    default, arches, flags, rules, notify = validate(prof, jpath, source)
    lib = _lib()
    key = None
    bpf = None
    skipped: list[str] = []
    if cache_dir:
        key = _cache_key(prof, lib)
        bpf = _cache_read(cache_dir, key)
    cached = bpf is not None
    if bpf is None:
        bpf, skipped = _build(lib, default, arches, rules, source)
        bpf = _enosys_stub(lib, prof.get("defaultAction"), arches, rules) + bpf
        if cache_dir and key:
            _cache_write(cache_dir, key, bpf)
    if not bpf or len(bpf) % 8:
        raise SetupError(f"seccomp: bad BPF program size {len(bpf)}")
    if len(bpf) // 8 > 4096:
        raise ConfigError(jpath, f"seccomp filter too long ({len(bpf) // 8} > 4096 instructions)",
                          source)
    if notify:
        flags |= FLAG_NEW_LISTENER
        if flags & FLAG_TSYNC:
            flags |= FLAG_TSYNC_ESRCH
    else:
        flags &= ~FLAG_WAIT_KILLABLE_RECV
    p = prof  # validated dict
    return Filter(bpf=bpf, flags=flags, notify=notify,
                  listener_path=p.get("listenerPath") or "",
                  listener_metadata=p.get("listenerMetadata") or "",
                  default_action=p.get("defaultAction"), skipped=sorted(set(skipped)),
                  compile_seconds=time.perf_counter() - t0, cached=cached)


def _build(lib, default: int, arches: list[int], rules: list[_Rule], source: str):
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SetupError("seccomp_init failed")
    skipped: list[str] = []
    try:
        native = lib.seccomp_arch_native()
        for a in arches:
            if a == native:
                continue
            rc = lib.seccomp_arch_add(ctx, a)
            if rc < 0 and rc != -17:   # EEXIST: already present
                raise SetupError(f"seccomp: adding architecture {a:#x}: {os.strerror(-rc)}")
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0)
        if sum(len(r.names) for r in rules) > 32:
            # runc does the same (its config has one entry per syscall name): binary tree
            # dispatch for long profiles (libseccomp <= 2.5.4 misbehaves with the optimisation
            # and 0 rules, hence the threshold).
            lib.seccomp_attr_set(ctx, _FLTATR_CTL_OPTIMIZE, 2)
        resolved: dict[str, int] = {}
        for r in rules:
            if r.action == default:
                continue
            by_index: dict[int, int] = {}
            for c in r.conds:
                by_index[c[0]] = by_index.get(c[0], 0) + 1
            if r.conds and max(by_index.values()) > 1:
                groups = [[c] for c in r.conds]      # runc: one rule per condition (OR)
            else:
                groups = [r.conds]
            for name in r.names:
                nr = resolved.get(name)
                if nr is None:
                    nr = lib.seccomp_syscall_resolve_name(name.encode())
                    resolved[name] = nr
                if nr == _SCMP_ERROR:
                    skipped.append(name)
                    continue
                for g in groups:
                    arr = (_ArgCmp * max(len(g), 1))(*[_ArgCmp(*c) for c in g])
                    rc = lib.seccomp_rule_add_array(ctx, r.action, nr, len(g), arr)
                    if rc < 0:
                        raise ConfigError(r.jpath, f"seccomp: adding rule for syscall {name!r}: "
                                          f"{os.strerror(-rc)}", source)
        mfd = os.memfd_create("ocirt-seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, mfd)
            if rc < 0:
                raise SetupError(f"seccomp_export_bpf: {os.strerror(-rc)}")
            size = os.lseek(mfd, 0, os.SEEK_END)
            bpf = os.pread(mfd, size, 0)
        finally:
            os.close(mfd)
    finally:
        lib.seccomp_release(ctx)
    return bpf, skipped


def _enosys_stub(lib, default_name: str, arches: list[int], rules: list[_Rule]) -> bytes:
    """runc's -ENOSYS stub (ocirt/security/enosys.py) for the listed architectures."""
    from ocirt.security import enosys
    if default_name in enosys.PERMISSIVE_DEFAULTS or not arches:
        return b""
    resolve = lib.seccomp_syscall_resolve_name_arch
    resolve.argtypes = [cabi.c_uint32, cabi.c_char_p]
    resolve.restype = cabi.c_int
    names = (n for r in rules for n in r.names)
    return enosys.stub(enosys.largest_syscalls(arches, names,
                                               lambda a, n: resolve(a, n.encode())))


# --- compile cache ------------------------------------------------------------------------------
# A poisoned cache entry would be a filter bypass, so an entry is only used when the directory
# and the file belong to our euid, are not group/other-writable, the file is a regular file
# with one link, opened without following symlinks, and carries the full key in its header.
# Anything else is silently ignored (the profile is compiled). The cache is best effort: write
# errors are ignored too. Entries never expire on their own; above _CACHE_MAX entries the
# directory is emptied before a new one is written.

_CACHE_FORMAT = b"ocirt-seccomp-bpf/2"     # /2: with the -ENOSYS stub
_CACHE_MAX = 128
_BPF_KEYS = ("defaultAction", "defaultErrnoRet", "architectures", "syscalls")


def _sha256(data: bytes) -> str:
    try:
        from _sha256 import sha256     # 3.11: avoids hashlib's OpenSSL import (~6 ms cold)
    except ImportError:
        from hashlib import sha256
    return sha256(data).hexdigest()


def _cache_key(prof: dict, lib) -> str:
    import json
    lib.seccomp_version.restype = cabi.POINTER(cabi.c_uint * 3)
    ver = ".".join(str(x) for x in lib.seccomp_version().contents)
    doc = {k: prof.get(k) for k in _BPF_KEYS}
    blob = json.dumps([_CACHE_FORMAT.decode(), ver, lib.seccomp_arch_native(), doc],
                      sort_keys=True, separators=(",", ":")).encode()
    return _sha256(blob)


def _trusted(st, euid: int) -> bool:
    return st.st_uid == euid and not st.st_mode & 0o022


def _cache_read(cache_dir: str, key: str) -> bytes | None:
    import stat
    euid = os.geteuid()
    try:
        dfd = os.open(cache_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not _trusted(os.fstat(dfd), euid):
            return None
        try:
            fd = os.open(key + ".bpf", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or not _trusted(st, euid):
                return None
            data = os.pread(fd, st.st_size, 0)
        finally:
            os.close(fd)
    finally:
        os.close(dfd)
    header = _CACHE_FORMAT + b" " + key.encode() + b"\n"
    if not data.startswith(header):
        return None
    bpf = data[len(header):]
    if not bpf or len(bpf) % 8:
        return None
    return bpf


def _cache_write(cache_dir: str, key: str, bpf: bytes) -> None:
    try:
        try:
            os.mkdir(cache_dir, 0o700)
        except FileExistsError:
            pass
        dfd = os.open(cache_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    tmp = f".{key}.{os.getpid()}.tmp"
    try:
        if not _trusted(os.fstat(dfd), os.geteuid()):
            return
        names = os.listdir(dfd)
        if len(names) >= _CACHE_MAX:
            for n in names:
                try:
                    os.unlink(n, dir_fd=dfd)
                except OSError:
                    pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dfd)
        try:
            data = _CACHE_FORMAT + b" " + key.encode() + b"\n" + bpf
            if os.write(fd, data) != len(data):
                raise OSError("short write")
        finally:
            os.close(fd)
        os.rename(tmp, key + ".bpf", src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)


# --- load (apply time: no imports, no library calls) ------------------------------------------

def load(f: Filter) -> int | None:
    """Install the filter on the calling thread (all threads with TSYNC). Returns the listener fd
    (O_CLOEXEC, so it never reaches the container process) when the profile uses NOTIFY.

    Without no_new_privs the caller must hold CAP_SYS_ADMIN (kernel rule)."""
    buf = cabi.create_string_buffer(f.bpf, len(f.bpf))
    prog = _SockFprog(len(f.bpf) // 8, cabi.cast(buf, cabi.c_void_p))
    try:
        ret = sc.syscall("seccomp", cabi.c_uint(SECCOMP_SET_MODE_FILTER),
                         cabi.c_uint(f.flags), cabi.byref(prog))
    except OSError as e:
        hint = ""
        if e.errno == 13:
            hint = " (needs no_new_privs or CAP_SYS_ADMIN)"
        elif e.errno == 16:
            hint = " (a seccomp listener already exists in this filter tree)"
        raise SetupError(f"loading seccomp filter: {e.strerror}{hint}") from None
    if f.flags & FLAG_TSYNC and ret > 0 and not f.notify:
        raise SetupError(f"seccomp TSYNC failed: thread {ret} could not be synchronised")
    return ret if f.notify else None
