"""What a compiled seccomp filter answers for a given system call, computed here as the kernel
would: a classic-BPF interpreter over struct seccomp_data.

ocirt asks it before relying on a filter to let through system calls of its own (ocirt.init.waiter
loads a filter before its last steps when it must, and needs those steps allowed). An answer is
given only when it cannot depend on what was not supplied: an argument passed as None (a
pointer, a file descriptor not known yet) or the instruction pointer makes the answer None as
soon as the program reads it, and so does an instruction this interpreter does not know.
"""

from __future__ import annotations

import struct

AUDIT_ARCH_X86_64 = 0xC000003E
RET_ACTION_FULL = 0xFFFF0000
RET_ALLOW = 0x7FFF0000
RET_LOG = 0x7FFC0000            # allowed, and logged

_INSN = struct.Struct("<HBBI")  # struct sock_filter: code, jt, jf, k
_DATA_LEN = 64                  # sizeof(struct seccomp_data)
_U32 = 0xFFFFFFFF


def verdict(bpf: bytes, nr: int, args: tuple[int | None, ...],
            arch: int = AUDIT_ARCH_X86_64) -> int | None:
    """The filter's return value for system call `nr` with `args` (up to six; missing ones are
    0), or None when it depends on something unknown."""
    words: dict[int, int | None] = {0: nr & _U32, 4: arch, 8: None, 12: None}
    for i in range(6):
        a = args[i] if i < len(args) else 0
        words[16 + 8 * i] = None if a is None else a & _U32
        words[20 + 8 * i] = None if a is None else a >> 32 & _U32
    prog = list(_INSN.iter_unpack(bpf))
    a = x = 0
    mem = [0] * 16
    pc = 0
    while pc < len(prog):
        code, jt, jf, k = prog[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00:                                 # BPF_LD
            mode = code & 0xE0
            if mode == 0x20 and code & 0x18 == 0x00:    # BPF_ABS | BPF_W
                a = words.get(k)
                if a is None:
                    return None
            elif mode == 0x00:                          # BPF_IMM
                a = k
            elif mode == 0x60 and k < 16:               # BPF_MEM
                a = mem[k]
            elif mode == 0x80:                          # BPF_LEN
                a = _DATA_LEN
            else:
                return None
        elif cls == 0x01:                               # BPF_LDX
            mode = code & 0xE0
            if mode == 0x00:
                x = k
            elif mode == 0x60 and k < 16:
                x = mem[k]
            elif mode == 0x80:
                x = _DATA_LEN
            else:
                return None
        elif cls in (0x02, 0x03):                       # BPF_ST, BPF_STX
            if k >= 16:
                return None
            mem[k] = a if cls == 0x02 else x
        elif cls == 0x04:                               # BPF_ALU
            a = _alu(code & 0xF0, a, x if code & 0x08 else k)
            if a is None:
                return None
        elif cls == 0x05:                               # BPF_JMP
            op = code & 0xF0
            if op == 0x00:                              # BPF_JA
                pc += k
                continue
            src = x if code & 0x08 else k
            if op == 0x10:
                taken = a == src
            elif op == 0x20:
                taken = a > src
            elif op == 0x30:
                taken = a >= src
            elif op == 0x40:
                taken = bool(a & src)
            else:
                return None
            pc += jt if taken else jf
        elif cls == 0x06:                               # BPF_RET
            rval = code & 0x18
            if rval == 0x00:
                return k
            if rval == 0x10:
                return a
            return None
        else:                                           # BPF_MISC
            if code & 0xF8 == 0x00:                     # TAX
                x = a
            elif code & 0xF8 == 0x80:                   # TXA
                a = x
            else:
                return None
    return None


def _alu(op: int, a: int, src: int) -> int | None:
    if op == 0x00:
        r = a + src
    elif op == 0x10:
        r = a - src
    elif op == 0x20:
        r = a * src
    elif op == 0x30:
        if src == 0:
            return None
        r = a // src
    elif op == 0x40:
        r = a | src
    elif op == 0x50:
        r = a & src
    elif op == 0x60:
        r = a << src if src < 32 else 0
    elif op == 0x70:
        r = a >> src if src < 32 else 0
    elif op == 0x80:
        r = -a
    elif op == 0x90:
        if src == 0:
            return None
        r = a % src
    elif op == 0xA0:
        r = a ^ src
    else:
        return None
    return r & _U32


def allows(bpf: bytes, calls: list[tuple[int, tuple[int | None, ...]]]) -> bool:
    """Whether the filter certainly allows (or only logs) every one of `calls`."""
    for nr, args in calls:
        ret = verdict(bpf, nr, args)
        if ret is None or ret & RET_ACTION_FULL not in (RET_ALLOW, RET_LOG):
            return False
    return True
