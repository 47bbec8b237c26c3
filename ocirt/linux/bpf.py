"""bpf(2) through ctypes: just what a cgroup v2 device filter needs (load, attach, query,
detach). Each call raises OSError with the errno; a failed load carries the verifier log.
"""

from __future__ import annotations

import os
import platform

from ocirt.linux import cabi
from ocirt.linux import syscalls

_NR_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351,
           "riscv64": 280}.get(platform.machine(), 321)

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6

BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2
BPF_F_REPLACE = 4

# The bpf_attr union is 128+ bytes in current kernels; passing a zeroed buffer of this size
# with only our members filled is what every loader does (the kernel checks the tail is 0).
_ATTR_SIZE = 128


class _ProgLoad(cabi.Structure):
    _fields_ = [("prog_type", cabi.c_uint32), ("insn_cnt", cabi.c_uint32),
                ("insns", cabi.c_uint64), ("license", cabi.c_uint64),
                ("log_level", cabi.c_uint32), ("log_size", cabi.c_uint32),
                ("log_buf", cabi.c_uint64), ("kern_version", cabi.c_uint32),
                ("prog_flags", cabi.c_uint32), ("prog_name", cabi.c_char * 16),
                ("prog_ifindex", cabi.c_uint32), ("expected_attach_type", cabi.c_uint32)]


class _ProgAttach(cabi.Structure):
    _fields_ = [("target_fd", cabi.c_uint32), ("attach_bpf_fd", cabi.c_uint32),
                ("attach_type", cabi.c_uint32), ("attach_flags", cabi.c_uint32),
                ("replace_bpf_fd", cabi.c_uint32)]


class _ProgQuery(cabi.Structure):
    _fields_ = [("target_fd", cabi.c_uint32), ("attach_type", cabi.c_uint32),
                ("query_flags", cabi.c_uint32), ("attach_flags", cabi.c_uint32),
                ("prog_ids", cabi.c_uint64), ("prog_cnt", cabi.c_uint32)]


class _GetFd(cabi.Structure):
    _fields_ = [("prog_id", cabi.c_uint32), ("next_id", cabi.c_uint32),
                ("open_flags", cabi.c_uint32)]


def _bpf(cmd: int, attr: cabi.Structure, what: str) -> int:
    buf = cabi.create_string_buffer(max(_ATTR_SIZE, cabi.sizeof(attr)))
    cabi.memmove(buf, cabi.addressof(attr), cabi.sizeof(attr))
    libc = syscalls.libc()
    ret = libc.syscall(cabi.c_long(_NR_BPF), cabi.c_int(cmd), buf,
                       cabi.c_uint(len(buf)))
    if ret < 0:
        e = cabi.get_errno()
        raise OSError(e, f"bpf({what}): {os.strerror(e)}")
    # Output members (query) come back in the buffer.
    cabi.memmove(cabi.addressof(attr), buf, cabi.sizeof(attr))
    return ret


def prog_load_cgroup_device(insns: bytes, license: str = "Apache-2.0",
                            name: str = "ocirt_dev") -> int:
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program; returns its fd (O_CLOEXEC)."""
    code = cabi.create_string_buffer(insns, len(insns))
    lic = cabi.create_string_buffer(license.encode())
    log = cabi.create_string_buffer(65536)
    attr = _ProgLoad(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(insns) // 8,
                     insns=cabi.addressof(code), license=cabi.addressof(lic),
                     log_level=0, log_size=0, log_buf=0, prog_name=name.encode()[:15],
                     expected_attach_type=BPF_CGROUP_DEVICE)
    try:
        return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")
    except OSError:
        pass
    # Load again with the verifier log, only on failure, to say why.
    attr.log_level, attr.log_size, attr.log_buf = 1, len(log), cabi.addressof(log)
    try:
        return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")
    except OSError as e:
        msg = log.value.decode(errors="replace").strip()
        raise OSError(e.errno, f"{e.strerror}; verifier: {msg[-2000:]}" if msg
                      else e.strerror) from None


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int,
                replace_fd: int = 0) -> None:
    _bpf(BPF_PROG_ATTACH, _ProgAttach(target_fd, prog_fd, attach_type, flags, replace_fd),
         "BPF_PROG_ATTACH")


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    _bpf(BPF_PROG_DETACH, _ProgAttach(target_fd, prog_fd, attach_type, 0, 0),
         "BPF_PROG_DETACH")


def prog_query(target_fd: int, attach_type: int) -> tuple[int, list[int]]:
    """(attach_flags, program ids) of what is attached directly to the cgroup."""
    ids = (cabi.c_uint32 * 64)()
    q = _ProgQuery(target_fd=target_fd, attach_type=attach_type, query_flags=0,
                   prog_ids=cabi.addressof(ids), prog_cnt=64)
    _bpf(BPF_PROG_QUERY, q, "BPF_PROG_QUERY")
    return q.attach_flags, list(ids[:q.prog_cnt])


def prog_get_fd_by_id(prog_id: int) -> int:
    return _bpf(BPF_PROG_GET_FD_BY_ID, _GetFd(prog_id=prog_id), "BPF_PROG_GET_FD_BY_ID")
