"""The one-file code cache serves modules only while they match their sources."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Imports `pkg.sub` with the cache installed; prints where it came from and its VALUE.
PROBE = """
import sys
sys.path.insert(0, {repo!r}); sys.path.insert(0, {tmp!r})
from ocirt import codecache
print(codecache.install({cache!r}))
import pkg.sub
print(type(pkg.sub.__spec__.loader).__name__, pkg.sub.VALUE, pkg.sub.__file__ == {src!r})
"""


@pytest.fixture
def pkg(tmp_path):
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "sub.py").write_text("VALUE = 'cached'\n")
    return root


def probe(tmp_path, cache) -> list[str]:
    code = PROBE.format(repo=REPO, tmp=str(tmp_path), cache=str(cache),
                        src=str(tmp_path / "pkg" / "sub.py"))
    p = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code], capture_output=True,
                       text=True, check=True)
    return p.stdout.split()


def build(pkg, cache) -> int:
    from ocirt import codecache
    return codecache.build(str(pkg), str(cache))


def test_build_caches_every_module_of_the_package(pkg, tmp_path):
    assert build(pkg, tmp_path / "c.bin") == 2


def test_modules_are_served_from_the_cache(pkg, tmp_path):
    build(pkg, tmp_path / "c.bin")
    assert probe(tmp_path, tmp_path / "c.bin") == ["True", "_Finder", "cached", "True"]


def test_an_edited_source_is_imported_from_the_source(pkg, tmp_path):
    build(pkg, tmp_path / "c.bin")
    (pkg / "sub.py").write_text("VALUE = 'edited!'\n")
    assert probe(tmp_path, tmp_path / "c.bin")[1:3] == ["SourceFileLoader", "edited!"]


def test_same_size_edit_with_new_mtime_is_not_served(pkg, tmp_path):
    build(pkg, tmp_path / "c.bin")
    (pkg / "sub.py").write_text("VALUE = 'CACHED'\n")
    st = os.stat(pkg / "sub.py")
    os.utime(pkg / "sub.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert probe(tmp_path, tmp_path / "c.bin")[1:3] == ["SourceFileLoader", "CACHED"]


def test_cache_of_another_interpreter_is_ignored(pkg, tmp_path):
    cache = tmp_path / "c.bin"
    build(pkg, cache)
    data = cache.read_bytes()
    cache.write_bytes(b"\0\0\r\n" + data[4:])
    assert probe(tmp_path, cache)[:2] == ["False", "SourceFileLoader"]


def test_truncated_cache_is_ignored(pkg, tmp_path):
    cache = tmp_path / "c.bin"
    build(pkg, cache)
    cache.write_bytes(cache.read_bytes()[:20])
    assert probe(tmp_path, cache)[:2] == ["False", "SourceFileLoader"]


def test_missing_cache_leaves_normal_imports(pkg, tmp_path):
    assert probe(tmp_path, tmp_path / "absent.bin")[:2] == ["False", "SourceFileLoader"]


def with_fresh_ocirt_cache(tmp_path, body: str) -> list[str]:
    """The words `body` prints, run with a cache of ocirt built now installed."""
    from ocirt import codecache
    cache = tmp_path / "ocirt.bin"
    codecache.build(cache_file=str(cache))
    code = (f"import sys; sys.path.insert(0, {REPO!r})\n"
            f"from ocirt import codecache; codecache.install({str(cache)!r})\n" + body)
    p = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                       check=True)
    return p.stdout.split()


def test_ocirt_itself_is_served_from_a_fresh_cache(tmp_path):
    assert with_fresh_ocirt_cache(tmp_path, (
        "import ocirt.lifecycle.create as m\n"
        "print(type(m.__spec__.loader).__name__, m.__name__)")) == [
        "_Finder", "ocirt.lifecycle.create"]


def test_hot_path_stdlib_modules_are_served_without_the_path_finder(tmp_path):
    assert with_fresh_ocirt_cache(tmp_path, (
        "import __future__, struct, _json, _ctypes\n"
        "for m in (__future__, struct, _json, _ctypes):\n"
        "    print(type(m.__spec__.loader).__name__)\n"
        "print(struct.pack('<H', 258).hex())")) == [
        "_Finder", "_Finder", "ExtensionFileLoader", "ExtensionFileLoader", "0201"]
