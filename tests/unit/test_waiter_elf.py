"""ocirt/init/waiter_elf.py is what ocirt/init/waiter.c builds into (hack/gen-waiter)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from ocirt_testlib import REPO
from ocirt.init import waiter_elf


def test_the_program_was_built_from_the_current_source():
    source = (REPO / "ocirt" / "init" / "waiter.c").read_bytes()
    assert waiter_elf.SOURCE_SHA256 == hashlib.sha256(source).hexdigest(), \
        "ocirt/init/waiter.c changed: run hack/gen-waiter"


def test_the_program_is_a_static_x86_64_executable_without_an_interpreter():
    elf = waiter_elf.ELF
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and elf[18] == 62     # ELF64, EM_X86_64
    assert int.from_bytes(elf[16:18], "little") == 2                     # ET_EXEC
    assert b"ld-linux" not in elf and len(elf) < 4096


def test_the_same_compiler_builds_the_same_bytes():
    if shutil.which("gcc") is None or shutil.which("strip") is None:
        pytest.skip("gcc and strip are needed to rebuild ocirt-wait")
    version = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    if version.splitlines()[0] != waiter_elf.COMPILER:
        pytest.skip(f"built with {waiter_elf.COMPILER}, this is {version.splitlines()[0]}")
    p = subprocess.run([str(REPO / "hack" / "gen-waiter"), "--check"], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
