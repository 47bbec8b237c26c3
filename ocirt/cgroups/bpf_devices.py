"""The cgroup v2 device filter: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program assembled here from
the devices rule set (the same emulated rule set the v1 files get, see controllers/devices.py),
loaded with bpf(2) and attached to the container's cgroup directory.

The program sees struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}, where
access_type = (access << 16) | type, and returns 1 to allow, 0 to deny. Layout, as runc's:

    r2 = type, r3 = access, r4 = major, r5 = minor
    for each exception:  if it matches -> return (not default)
    return default
"""

from __future__ import annotations

import errno
import os
import struct

from ocirt.errors import CgroupError

# BPF_DEVCG_* from linux/bpf.h
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
_TYPE = {"b": DEV_BLOCK, "c": DEV_CHAR}

R0, R1, R2, R3, R4, R5 = range(6)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def ldx_w(dst: int, src: int, off: int) -> bytes:   # dst = *(u32 *)(src + off)
    return _insn(0x61, dst, src, off)


def and32_imm(dst: int, imm: int) -> bytes:
    return _insn(0x54, dst, imm=imm)


def rsh32_imm(dst: int, imm: int) -> bytes:
    return _insn(0x74, dst, imm=imm)


def mov32_reg(dst: int, src: int) -> bytes:
    return _insn(0xBC, dst, src)


def mov64_imm(dst: int, imm: int) -> bytes:
    return _insn(0xB7, dst, imm=imm)


def jne_imm(dst: int, imm: int, off: int) -> bytes:
    return _insn(0x55, dst, off=off, imm=imm)


def jne_reg(dst: int, src: int, off: int) -> bytes:
    return _insn(0x5D, dst, src, off=off)


def jeq_imm(dst: int, imm: int, off: int) -> bytes:
    return _insn(0x15, dst, off=off, imm=imm)


def exit_() -> bytes:
    return _insn(0x95)


def access_bits(access: str) -> int:
    bits = 0
    for ch in access:
        bits |= _ACCESS[ch]
    return bits


def _rule_block(rtype: str, major: int, minor: int, access: str, allow: bool) -> list[bytes]:
    """Instructions for one exception; every conditional jump skips to the end of the block,
    whose length is only known afterwards, so jumps are placeholders patched below."""
    acc = access_bits(access)
    body: list[tuple[str, object]] = [("jne_type", _TYPE[rtype])]
    full = ACC_MKNOD | ACC_READ | ACC_WRITE
    if acc != full:
        if allow:
            # Allow only if the rule grants every requested bit, as the v1 kernel checks.
            body += [("mov", None), ("and", acc), ("jne_r1r3", None)]
        else:
            # A deny matches when it shares any requested bit (v1's partial match).
            body += [("mov", None), ("and", acc), ("jeq_r1_0", None)]
    if major >= 0:
        body.append(("jne_major", major))
    if minor >= 0:
        body.append(("jne_minor", minor))
    n = len(body) + 2           # plus "r0 = verdict; exit"
    out = []
    for i, (op, arg) in enumerate(body):
        skip = n - i - 1        # jump offset lands just past this block
        if op == "jne_type":
            out.append(jne_imm(R2, arg, skip))
        elif op == "mov":
            out.append(mov32_reg(R1, R3))
        elif op == "and":
            out.append(and32_imm(R1, arg))
        elif op == "jne_r1r3":
            out.append(jne_reg(R1, R3, skip))
        elif op == "jeq_r1_0":
            out.append(jeq_imm(R1, 0, skip))
        elif op == "jne_major":
            out.append(jne_imm(R4, arg, skip))
        elif op == "jne_minor":
            out.append(jne_imm(R5, arg, skip))
    out += [mov64_imm(R0, 1 if allow else 0), exit_()]
    return out


def assemble(default_allow: bool, exceptions: list[tuple[str, int, int, str]]) -> bytes:
    """exceptions: (type "c"|"b", major or -1, minor or -1, access) -- each one the opposite
    of the default. Returns the raw instructions."""
    prog = [ldx_w(R2, R1, 0), and32_imm(R2, 0xFFFF),
            ldx_w(R3, R1, 0), rsh32_imm(R3, 16),
            ldx_w(R4, R1, 4), ldx_w(R5, R1, 8)]
    for rtype, major, minor, access in exceptions:
        prog += _rule_block(rtype, major, minor, access, not default_allow)
    prog += [mov64_imm(R0, 1 if default_allow else 0), exit_()]
    return b"".join(prog)


def install(dirpath: str, insns: bytes) -> None:
    """Load the program and attach it to `dirpath`, then detach whatever was attached there
    before (an update replaces the filter; there is never a moment without one)."""
    from ocirt.linux import bpf

    try:
        dfd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"cannot open cgroup {dirpath}: {e.strerror}") from None
    pfd = -1
    try:
        try:
            _, old_ids = bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE)
        except OSError:
            old_ids = []
        try:
            pfd = bpf.prog_load_cgroup_device(insns)
        except OSError as e:
            raise CgroupError(f"cannot load the device filter program: {e.strerror}") from None
        old_fds = []
        for pid_ in old_ids:
            try:
                old_fds.append(bpf.prog_get_fd_by_id(pid_))
            except OSError:
                pass
        try:
            if len(old_fds) == 1:
                try:
                    bpf.prog_attach(dfd, pfd, bpf.BPF_CGROUP_DEVICE,
                                    bpf.BPF_F_ALLOW_MULTI | bpf.BPF_F_REPLACE, old_fds[0])
                    old_fds_to_detach: list[int] = []
                except OSError as e:
                    if e.errno not in (errno.EINVAL, errno.ENOENT):
                        raise
                    bpf.prog_attach(dfd, pfd, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI)
                    old_fds_to_detach = old_fds
            else:
                bpf.prog_attach(dfd, pfd, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI)
                old_fds_to_detach = old_fds
            for fd in old_fds_to_detach:
                try:
                    bpf.prog_detach(dfd, fd, bpf.BPF_CGROUP_DEVICE)
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        raise
        except OSError as e:
            raise CgroupError(f"cannot attach the device filter to {dirpath}: "
                              f"{e.strerror}") from None
        finally:
            for fd in old_fds:
                os.close(fd)
    finally:
        if pfd >= 0:
            os.close(pfd)
        os.close(dfd)


def attached(dirpath: str) -> list[int]:
    """Program ids attached to `dirpath` (for tests and diagnostics)."""
    from ocirt.linux import bpf

    dfd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE)[1]
    finally:
        os.close(dfd)
