"""The -ENOSYS stub runc prepends to every non-permissive seccomp filter.

A profile lists the syscalls its author knew. A syscall the kernel added later (or one the
kernel knows but this libseccomp cannot name) would otherwise get the profile's default action,
typically EPERM or a kill, and libc only falls back to an older syscall on ENOSYS (glibc's
clone3 -> clone, statx -> fstatat, faccessat2 -> faccessat, ...). So, as runc's patchbpf does,
a syscall number above the largest one the profile names for that architecture returns ENOSYS
before the libseccomp program runs; everything else falls through to it unchanged.

Rules as runc 1.1.5: no stub when the default action lets the syscall run anyway (ALLOW, LOG,
TRACE); only the listed architectures get a section (the others reach libseccomp's bad-arch
action); x86_64 and x32 share one audit arch and are told apart by the x32 bit; on s390(x) the
multiplexer syscall 0, which unknown large numbers end up as, returns ENOSYS too.

The stub is classic BPF built here (a few dozen instructions): every conditional jump only
skips one instruction and the far jumps are `ja` with 32-bit offsets, so no program length can
overflow a jump field.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# classic BPF opcodes (linux/filter.h)
_LD_W_ABS = 0x20
_JA = 0x05
_JEQ_K = 0x15
_JGT_K = 0x25
_JSET_K = 0x45
_RET_K = 0x06

_RET_ERRNO_ENOSYS = 0x00050000 | 38       # SECCOMP_RET_ERRNO | ENOSYS
_OFF_NR, _OFF_ARCH = 0, 4                 # struct seccomp_data
_X32_BIT = 0x40000000

AUDIT_X86_64 = 0xC000003E
_TOKEN_X32 = 0x4000003E                   # libseccomp's token; the kernel reports AUDIT_X86_64
_S390 = (0x00000016, 0x80000016)

PERMISSIVE_DEFAULTS = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


def largest_syscalls(arch_tokens: Iterable[int], names: Iterable[str],
                     resolve: Callable[[int, str], int]) -> dict[int, dict[int, int]]:
    """{audit arch: {libseccomp arch token: largest syscall number named}} for every listed
    arch that has at least one name. `resolve(token, name)` is libseccomp's per-arch lookup:
    negative values (unknown names, socketcall-multiplexed pseudo numbers) are ignored."""
    names = sorted(set(names))
    out: dict[int, dict[int, int]] = {}
    for token in arch_tokens:
        audit = AUDIT_X86_64 if token == _TOKEN_X32 else token
        per = out.setdefault(audit, {})
        if token in per:
            continue
        largest = max((nr for nr in (resolve(token, n) for n in names) if nr > 0), default=0)
        if largest:
            per[token] = largest
    return {a: per for a, per in out.items() if per}


class _Asm:
    """Instructions with symbolic `ja` targets, resolved to offsets at the end."""

    def __init__(self) -> None:
        self.code: list[list] = []            # [op, jt, jf, k, target label or None]
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def op(self, op: int, k: int = 0, jt: int = 0, jf: int = 0) -> None:
        self.code.append([op, jt, jf, k, None])

    def ja(self, target: str) -> None:
        self.code.append([_JA, 0, 0, 0, target])

    def if_then_ja(self, op: int, k: int, target: str) -> None:
        """if (A op k) goto target: the true branch falls into a far jump."""
        self.op(op, k, jt=0, jf=1)
        self.ja(target)

    def assemble(self) -> bytes:
        import struct
        out = bytearray()
        for i, (op, jt, jf, k, target) in enumerate(self.code):
            if target is not None:
                k = self.labels[target] - (i + 1)
            out += struct.pack("=HBBI", op, jt, jf, k)
        return bytes(out)


def stub(largest: dict[int, dict[int, int]]) -> bytes:
    """The stub program for `largest` (see largest_syscalls); b"" when there is nothing to
    check. Its last instruction falls through to the program appended after it."""
    if not largest:
        return b""
    a = _Asm()
    archs = sorted(largest)
    a.op(_LD_W_ABS, _OFF_ARCH)
    for arch in archs:
        a.if_then_ja(_JEQ_K, arch, f"arch-{arch:x}")
    a.ja("filter")
    for arch in archs:
        per = largest[arch]
        a.label(f"arch-{arch:x}")
        a.op(_LD_W_ABS, _OFF_NR)
        if arch in _S390:
            a.if_then_ja(_JEQ_K, 0, "enosys")
        if arch == AUDIT_X86_64:
            a.if_then_ja(_JSET_K, _X32_BIT, f"x32-{arch:x}" if _TOKEN_X32 in per else "filter")
            _above(a, per.get(AUDIT_X86_64))
            if _TOKEN_X32 in per:
                a.label(f"x32-{arch:x}")
                _above(a, per[_TOKEN_X32])
        else:
            _above(a, per[arch])
    a.label("enosys")
    a.op(_RET_K, _RET_ERRNO_ENOSYS)
    a.label("filter")
    return a.assemble()


def _above(a: _Asm, largest: int | None) -> None:
    """ENOSYS for syscall numbers above `largest`, the rest to the filter."""
    if largest is not None:
        a.if_then_ja(_JGT_K, largest, "enosys")
    a.ja("filter")
