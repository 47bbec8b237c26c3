"""Each lifecycle verb imports exactly its pinned list of modules, so that a stray import on a
hot path (a module pulled in by a new helper, a lazy import made eager) shows up here.

The lists are what `python3 -X importtime` reports for the verb run through the launcher with a
plain config (ocirt spec's default, made non-interactive), minus what the bare interpreter
imports at start-up. The container's init is forked from the runtime after its imports, so
create's and run's lists include what the init imports. When a change needs a new module on one
of these paths, add it to the list deliberately (and, if it is from the standard library and not
built in, to ocirt/codecache.py's STDLIB).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


# Imported by every verb: the launcher, the command line, the state store, cgroup file helpers.
# No `os`: these modules call `posix` (ocirt/fspath.py).
COMMON = {
    "__future__", "_json", "errno", "fcntl", "gc", "ocirt", "ocirt.cgroups", "ocirt.cgroups.fs",
    "ocirt.cli", "ocirt.cli.common", "ocirt.cli.flags", "ocirt.cli.main", "ocirt.errors",
    "ocirt.fspath", "ocirt.jsonio", "ocirt.lifecycle", "ocirt.log", "ocirt.state",
    "ocirt.state.machine", "ocirt.state.store",
}
# `os` and what it imports, for the verbs that need more of it than `posix` offers.
OS = {"_collections_abc", "_stat", "genericpath", "os", "posixpath", "stat"}
# The crash tests' pause points (one environment lookup), on every verb that changes a container.
TESTPOINT = {"ocirt.testpoint"}
# What a verb on an existing container adds.
CONTAINER = {
    "ocirt.cgroups.controllers", "ocirt.cgroups.controllers.freezer", "ocirt.lifecycle.container",
}
# Starting a process (create, run, exec): its security settings, the init, the syscall layer.
PROCESS = {
    "_ctypes", "_socket", "_struct", "struct", "ocirt.cgroups.detect", "ocirt.cgroups.manager",
    "ocirt.cgroups.warmup", "ocirt.config", "ocirt.config.semantic",
    "ocirt.features_data", "ocirt.hooks", "ocirt.init",
    "ocirt.init.namespaces", "ocirt.init.standard", "ocirt.linux", "ocirt.linux.cabi",
    "ocirt.linux.signals", "ocirt.linux.syscalls", "ocirt.net",
    "ocirt.process", "ocirt.process.caps", "ocirt.process.ioprio", "ocirt.process.oom",
    "ocirt.process.personality", "ocirt.process.rlimits", "ocirt.process.sched",
    "ocirt.process.security", "ocirt.process.user", "ocirt.security", "ocirt.security._procfs",
    "ocirt.security.lsm", "ocirt.spawn", "ocirt.spawn.exeseal", "ocirt.spawn.sync",
} | TESTPOINT | OS
# Building a container (create, run): validation, the rootfs, the cgroups.
BUILD = {
    "ocirt.cgroups.controllers._check", "ocirt.cgroups.controllers.cpuset", "ocirt.cgroups.paths",
    "ocirt.cgroups.controllers.devices", "ocirt.config._schema_config", "ocirt.config.load",
    "ocirt.config.patterns", "ocirt.config.support", "ocirt.config.syscall_args",
    "ocirt.config.validate", "ocirt.linux.mountinfo", "ocirt.linux.userns", "ocirt.rootless",
    "ocirt.lifecycle.create", "ocirt.linux.pathrs", "ocirt.linux.procfs", "ocirt.rootfs",
    "ocirt.rootfs.attach", "ocirt.rootfs.cgroupfs", "ocirt.rootfs.copyup", "ocirt.rootfs.devices",
    "ocirt.rootfs.hostns", "ocirt.rootfs.masked", "ocirt.rootfs.mountpoint", "ocirt.rootfs.mounts",
    "ocirt.rootfs.options", "ocirt.rootfs.pivot", "ocirt.rootfs.plan", "ocirt.rootfs.propagation",
    "ocirt.rootfs.setup", "ocirt.rootfs.sysctl", "ocirt.init.waiter", "ocirt.init.waiter_elf",
}
PINNED: dict[str, set[str]] = {
    "state": COMMON | CONTAINER | {
        "ocirt.cli.state",
    },
    "start": COMMON | CONTAINER | TESTPOINT | {
        "select", "ocirt.cli.start", "ocirt.lifecycle.start",
    },
    "kill": COMMON | CONTAINER | {
        "ocirt.cli.kill", "ocirt.lifecycle.kill", "ocirt.linux", "ocirt.linux.signals",
    },
    "delete": COMMON | CONTAINER | TESTPOINT | {
        "select", "ocirt.cgroups.detect", "ocirt.cgroups.manager", "ocirt.cli.delete", "ocirt.lifecycle.delete", "ocirt.linux", "ocirt.linux.signals",
    },
    "exec": COMMON | CONTAINER | PROCESS | {
        "ocirt.cli.exec", "ocirt.init.setns", "ocirt.lifecycle.exec", "ocirt.lifecycle.foreground",
        "ocirt.spawn.preserve",
    },
    "create": COMMON | PROCESS | BUILD | {
        "ocirt.cgroups.controllers", "ocirt.cgroups.controllers.freezer", "ocirt.cli.create",
    },
    "run": COMMON | CONTAINER | PROCESS | BUILD | {
        "select", "ocirt.cli.run", "ocirt.lifecycle.delete", "ocirt.lifecycle.foreground",
        "ocirt.lifecycle.run", "ocirt.lifecycle.start",
    },
}


def launcher_interpreter(launcher: str) -> list[str]:
    """The interpreter and flags of the launcher's #! line."""
    return Path(launcher).read_text().splitlines()[0][2:].split()


def importtime_launcher(tmp_path: Path, launcher: str) -> str:
    """A wrapper running the launcher under its own interpreter and flags, plus -X importtime."""
    wrapper = tmp_path / "ocirt-importtime"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(launcher_interpreter(launcher))
                       + f' -X importtime {launcher} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def imported(stderr: bytes) -> set[str]:
    names = set()
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and not line.endswith("imported package"):
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.fixture
def traced(ocirt, tmp_path):
    """Runs one verb on the `ocirt` fixture's state root; returns the modules it imported
    beyond the bare interpreter's start-up."""
    p = subprocess.run(launcher_interpreter(ocirt.binary) + ["-X", "importtime", "-c", "pass"],
                       capture_output=True, check=True)
    start_up = imported(p.stderr)
    runner = type(ocirt)(ocirt.root, importtime_launcher(tmp_path, ocirt.binary))

    def run(*args: str) -> set[str]:
        return imported(runner.ok(*args).stderr) - start_up
    return run


def assert_pinned(got: set[str], want: set[str]) -> None:
    assert got == want, (f"new imports: {sorted(got - want)}; "
                         f"no longer imported: {sorted(want - got)}")


@pytest.fixture
def created(ocirt, bundle, cid) -> str:
    ocirt.ok("create", "--bundle", str(bundle.args("sleep", "100").path), cid)
    return cid


@pytest.fixture
def running(ocirt, created) -> str:
    ocirt.ok("start", created)
    return created


def test_create_imports_only_its_pinned_modules(traced, bundle, cid):
    assert_pinned(traced("create", "--bundle", str(bundle.args("sleep", "100").path), cid),
                  PINNED["create"])


def test_start_imports_only_its_pinned_modules(traced, created):
    assert_pinned(traced("start", created), PINNED["start"])


def test_state_imports_only_its_pinned_modules(traced, created):
    assert_pinned(traced("state", created), PINNED["state"])


def test_kill_imports_only_its_pinned_modules(traced, running):
    assert_pinned(traced("kill", running, "KILL"), PINNED["kill"])


def test_delete_force_imports_only_its_pinned_modules(traced, running):
    assert_pinned(traced("delete", "--force", running), PINNED["delete"])


def test_exec_imports_only_its_pinned_modules(traced, running):
    assert_pinned(traced("exec", running, "true"), PINNED["exec"])


def test_run_imports_only_its_pinned_modules(traced, bundle, cid):
    assert_pinned(traced("run", "--bundle", str(bundle.path), cid), PINNED["run"])
