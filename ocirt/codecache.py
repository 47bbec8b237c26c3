"""The compiled code of every ocirt module in one file, for start-up speed.

A runtime is started for every container operation, and importing ~100 small modules through
the normal path finder costs about as much as starting the interpreter: per module it stats
directories and the source, opens, reads and validates a .pyc, all in interpreted importlib
code. `build()` (run by hack/install) writes one file with every module's code object;
`install()` (called by the launcher before anything of ocirt is imported) puts a finder first
on sys.meta_path that serves modules from it.

The cache can never serve stale code: each entry records its source file's size and mtime, and
a module whose source no longer matches (or that the cache does not know) is left to the
normal import system. A cache written by another interpreter version is ignored as a whole.

The few standard-library modules of the hot path that are neither built in nor frozen are in
the cache too (STDLIB): the pure-Python ones compiled like ocirt's, the extension modules as
their file's path, handed to the normal extension loader. Either way no import on a lifecycle
call lists the standard library's directories (~250 entries) or opens a .pyc there.

(No `from __future__ import annotations` here, unlike the rest of ocirt: that statement
imports the __future__ module, and this module runs before the cache can serve it.)
"""

import marshal
import posix
import sys

# posix, not os: a lifecycle call need not pay for `import os` (see ocirt/fspath.py). The
# launcher gives this module a normal absolute __file__; build() needs os, and imports it.
if __file__.startswith("/") and not any(p in __file__ for p in ("//", "/./", "/../")):
    _ROOT = __file__.rpartition("/")[0]
else:
    import os
    _ROOT = os.path.dirname(os.path.abspath(__file__))
CACHE_FILE = _ROOT + "/__pycache__/codecache.bin"
# What ocirt's lifecycle verbs import from the standard library beyond the built-in and frozen
# modules (tests/integration/test_import_footprint.py pins each verb's list).
STDLIB = ("__future__", "struct", "_json", "_ctypes")
_EXTENSION = -1      # the offset of an extension module's entry: loaded from its own file


def _magic() -> bytes:
    # The bytecode magic of this interpreter, without importing importlib.
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER


class _Finder:
    """A meta path finder and loader for the modules in the cache."""

    def __init__(self, fd: int, base: int, index: dict[str, tuple], path: str) -> None:
        self._fd = fd          # the cache file, read from only when a module is loaded
        self._path = path
        self._base = base      # offset of the code section
        # name -> (source path, is package, mtime_ns, size, offset, length)
        self._index = index

    def find_spec(self, fullname: str, path=None, target=None):
        entry = self._index.get(fullname)
        if entry is None:
            return None
        source, is_pkg, mtime_ns, size, offset = entry[:5]
        try:
            st = posix.stat(source)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None
        spec_type = sys.modules["_frozen_importlib"].ModuleSpec
        loader = self
        if offset == _EXTENSION:
            loader = sys.modules["_frozen_importlib_external"].ExtensionFileLoader(fullname,
                                                                                   source)
        spec = spec_type(fullname, loader, origin=source, is_package=is_pkg)
        if is_pkg:
            spec.submodule_search_locations = [source.rpartition("/")[0]]
        spec.has_location = True
        if loader is self:
            # __cached__ names where the compiled code comes from. Set, it also spares the
            # import system deriving a __pycache__/*.pyc name from the source path (about a
            # tenth of the cost of each import).
            spec.cached = self._path
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        offset, length = self._index[module.__spec__.name][4:]
        data = posix.pread(self._fd, length, self._base + offset)
        if len(data) != length:
            raise ImportError(f"{CACHE_FILE} is truncated", name=module.__spec__.name)
        exec(marshal.loads(data), module.__dict__)


# File layout: magic, 8-byte index length, marshalled index, then the modules' marshalled code.
def install(cache_file: str = CACHE_FILE) -> bool:
    """Serve ocirt's modules from the cache, if there is a valid one; True if installed."""
    try:
        fd = posix.open(cache_file, posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError:
        return False
    try:
        magic = _magic()
        head = posix.pread(fd, len(magic) + 8, 0)
        if head[:len(magic)] != magic or len(head) != len(magic) + 8:
            raise ValueError("not a cache of this interpreter")
        n = int.from_bytes(head[len(magic):], "little")
        index = marshal.loads(posix.pread(fd, n, len(head)))
        if not isinstance(index, dict):
            raise ValueError("bad index")
    except (OSError, EOFError, ValueError, TypeError):
        posix.close(fd)
        return False
    sys.meta_path.insert(0, _Finder(fd, len(head) + n, index, cache_file))
    return True


def _modules(root: str) -> list[tuple[str, str, bool]]:
    """(module name, source path, is package) for every module of the package at `root`."""
    import os
    top = os.path.basename(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        if "__init__.py" not in filenames:
            dirnames[:] = []
            continue
        rel = os.path.relpath(dirpath, os.path.dirname(root))
        pkg = rel.replace(os.sep, ".")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            if name == "__init__.py":
                found.append((pkg, path, True))
            else:
                found.append((f"{pkg}.{name[:-3]}", path, False))
    assert found and found[0][0] == top
    return found


def _stdlib(names: tuple) -> list:
    """(module name, file, is package) of the modules in `names` that are read from files."""
    import importlib.util
    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.has_location and spec.origin:
            found.append((name, spec.origin, spec.submodule_search_locations is not None))
    return found


def build(root: str = _ROOT, cache_file: str = CACHE_FILE, stdlib: tuple | None = None) -> int:
    """Compile every module under `root` (and, for ocirt's own cache, those of STDLIB) into
    the cache file; returns how many."""
    import os
    if stdlib is None:
        stdlib = STDLIB if os.path.abspath(root) == _ROOT else ()
    index, chunks, offset = {}, [], 0
    for name, path, is_pkg in _modules(root) + _stdlib(stdlib):
        st = os.stat(path)      # before reading: a later edit then mismatches, never hides
        if not path.endswith(".py"):
            index[name] = (path, is_pkg, st.st_mtime_ns, st.st_size, _EXTENSION, 0)
            continue
        with open(path, "rb") as f:
            source = f.read()
        code = marshal.dumps(compile(source, path, "exec", dont_inherit=True))
        index[name] = (path, is_pkg, st.st_mtime_ns, st.st_size, offset, len(code))
        chunks.append(code)
        offset += len(code)
    head = marshal.dumps(index)
    os.makedirs(os.path.dirname(cache_file), exist_ok=True)
    tmp = f"{cache_file}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(_magic() + len(head).to_bytes(8, "little") + head)
        for code in chunks:
            f.write(code)
    os.replace(tmp, cache_file)
    return len(index)


if __name__ == "__main__":
    print(f"{build()} modules cached in {CACHE_FILE}")
