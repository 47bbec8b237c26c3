"""The part of ctypes that ocirt's syscall layer uses, defined over `_ctypes` directly.

Importing the `ctypes` package costs 2-3 ms on every container start (it imports struct, types
and its byte-order module and defines dozens of classes we never use), while `_ctypes`, the
C module underneath that does all the real work, costs a fraction of that. The names here
mean exactly what they mean in ctypes (tests/unit/test_cabi.py checks them against it), for
x86_64 and aarch64 Linux (LP64): long and size_t are 64-bit.
"""

from __future__ import annotations

import _ctypes
from _ctypes import (FUNCFLAG_CDECL, FUNCFLAG_PYTHONAPI, FUNCFLAG_USE_ERRNO, POINTER,
                     RTLD_LOCAL, Structure, _SimpleCData, addressof, byref, get_errno, sizeof)

__all__ = ["CDLL", "POINTER", "Structure", "addressof", "byref", "c_char", "c_char_p", "c_int",
           "c_int32", "c_int64", "c_long", "c_size_t", "c_uint", "c_uint16", "c_uint32",
           "c_uint64", "c_uint8", "c_ulong", "c_ushort", "c_void_p", "cast",
           "create_string_buffer", "get_errno", "memmove", "sizeof"]


def _simple(name: str, code: str) -> type:
    # What ctypes' own `class c_int(_SimpleCData): _type_ = "i"` definitions make.
    return type(name, (_SimpleCData,), {"_type_": code, "__module__": __name__})


c_int, c_uint, c_long, c_ulong = _simple("c_int", "i"), _simple("c_uint", "I"), \
    _simple("c_long", "l"), _simple("c_ulong", "L")
c_ushort, c_ubyte, c_char = _simple("c_ushort", "H"), _simple("c_ubyte", "B"), \
    _simple("c_char", "c")
c_char_p, c_void_p, py_object = _simple("c_char_p", "z"), _simple("c_void_p", "P"), \
    _simple("py_object", "O")
c_int32, c_uint32, c_uint16, c_uint8 = c_int, c_uint, c_ushort, c_ubyte
c_int64, c_uint64, c_size_t = c_long, c_ulong, c_ulong


class CDLL:
    """A loaded shared library (None: the interpreter itself, hence libc); attributes are
    its functions, returning int unless their restype says otherwise."""

    def __init__(self, name: str | None, use_errno: bool = False) -> None:
        flags = FUNCFLAG_CDECL | (FUNCFLAG_USE_ERRNO if use_errno else 0)

        class _FuncPtr(_ctypes.CFuncPtr):
            _flags_ = flags
            _restype_ = c_int

        self._name = name
        self._FuncPtr = _FuncPtr
        self._handle = _ctypes.dlopen(name, RTLD_LOCAL)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        func = self._FuncPtr((name, self))
        func.__name__ = name
        setattr(self, name, func)
        return func


def create_string_buffer(init: bytes | int, size: int | None = None):
    """A mutable char array: of `init` bytes (plus a NUL unless `size` says otherwise), or
    of `init` zero bytes."""
    if isinstance(init, int):
        return (c_char * init)()
    if size is None:
        size = len(init) + 1
    buf = (c_char * size)()
    buf.value = init
    return buf


class _MemmoveFunc(_ctypes.CFuncPtr):
    _argtypes_ = (c_void_p, c_void_p, c_size_t)
    _restype_ = c_void_p
    _flags_ = FUNCFLAG_CDECL


class _CastFunc(_ctypes.CFuncPtr):
    _argtypes_ = (c_void_p, py_object, py_object)
    _restype_ = py_object
    _flags_ = FUNCFLAG_CDECL | FUNCFLAG_PYTHONAPI


memmove = _MemmoveFunc(_ctypes._memmove_addr)
_cast = _CastFunc(_ctypes._cast_addr)


def cast(obj, typ):
    """`obj` (a ctypes instance, or an address) seen as pointer type `typ`."""
    return _cast(obj, obj, typ)
