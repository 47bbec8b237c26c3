"""ocirt.linux.cabi means what ctypes means, for the names the syscall layer uses."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from ocirt.linux import cabi

SIMPLE = ["c_int", "c_uint", "c_long", "c_ulong", "c_ushort", "c_char", "c_char_p", "c_void_p",
          "c_size_t", "c_int32", "c_uint32", "c_int64", "c_uint64", "c_uint16", "c_uint8"]


@pytest.mark.parametrize("name", SIMPLE)
def test_simple_types_match_ctypes(name):
    ours, theirs = getattr(cabi, name), getattr(ctypes, name)
    assert cabi.sizeof(ours) == ctypes.sizeof(theirs)
    assert ours._type_ == theirs._type_


def test_structures_lay_out_like_ctypes():
    class Ours(cabi.Structure):
        _fields_ = [("a", cabi.c_ushort), ("p", cabi.c_void_p), ("n", cabi.c_char * 16)]

    class Theirs(ctypes.Structure):
        _fields_ = [("a", ctypes.c_ushort), ("p", ctypes.c_void_p), ("n", ctypes.c_char * 16)]

    assert cabi.sizeof(Ours) == ctypes.sizeof(Theirs) == 32
    assert Ours.p.offset == Theirs.p.offset and Ours.n.offset == Theirs.n.offset


def test_libc_functions_return_int_and_work():
    libc = cabi.CDLL(None, use_errno=True)
    assert libc.getpid() == os.getpid()


def test_errno_of_a_failed_call_is_kept():
    libc = cabi.CDLL(None, use_errno=True)
    assert libc.close(-1) == -1
    assert cabi.get_errno() == errno.EBADF


def test_restype_and_argtypes_are_honoured():
    libc = cabi.CDLL(None)
    libc.strlen.restype = cabi.c_size_t
    libc.strlen.argtypes = [cabi.c_char_p]
    assert libc.strlen(b"ocirt") == 5


def test_create_string_buffer_of_bytes_keeps_embedded_nuls():
    buf = cabi.create_string_buffer(b"a\0b", 3)
    assert buf.raw == b"a\0b" and cabi.sizeof(buf) == 3


def test_create_string_buffer_adds_a_nul_by_default():
    assert cabi.create_string_buffer(b"abc").raw == b"abc\0"


def test_create_string_buffer_of_a_size_is_zeroed():
    assert cabi.create_string_buffer(8).raw == b"\0" * 8


def test_memmove_copies_between_buffers():
    src, dst = cabi.create_string_buffer(b"hello", 5), cabi.create_string_buffer(5)
    cabi.memmove(dst, cabi.addressof(src), 5)
    assert dst.raw == b"hello"


def test_cast_gives_the_buffer_address_as_a_pointer():
    buf = cabi.create_string_buffer(b"xyz")
    assert cabi.cast(buf, cabi.c_void_p).value == cabi.addressof(buf)


def test_pointer_types_read_through():
    arr = (cabi.c_uint * 3)(1, 2, 3)
    p = cabi.cast(arr, cabi.POINTER(cabi.c_uint * 3))
    assert list(p.contents) == [1, 2, 3]


def test_importing_cabi_does_not_import_the_ctypes_package():
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (f"import sys; sys.path.insert(0, {repo!r})\n"
            "import ocirt.linux.syscalls, ocirt.process.security\n"
            "print('ctypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"
