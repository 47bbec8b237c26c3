"""The six hook kinds: when they run, in which namespaces, with the state on stdin."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from ocirt_testlib import (NO_SIGNAL_MASKS, cgroup_dirs_named, ignore_and_block_signals,
                           signal_masks)


def recorder(tmp_path: Path, name: str) -> dict:
    """A host-side hook (runs in the runtime's namespaces) that records its stdin, argv, env and
    the mount namespace it ran in."""
    script = tmp_path / f"hook-{name}.sh"
    out = tmp_path / f"{name}.out"
    script.write_text("#!/bin/sh\n"
                      f"cat > {out}.stdin\n"
                      f"echo \"$@\" > {out}.args\n"
                      f"env > {out}.env\n"
                      f"readlink /proc/self/ns/mnt > {out}.mnt\n"
                      f"pwd > {out}.cwd\n"
                      f"date +%s%N > {out}.time\n")
    script.chmod(0o755)
    return {"path": str(script), "args": [f"hook-{name}", "a1", "a2"], "env": ["HOOKVAR=yes"]}


def read(tmp_path: Path, name: str, part: str) -> str:
    return (tmp_path / f"{name}.out.{part}").read_text()


@pytest.fixture
def hooked(bundle, tmp_path):
    # Hook files must be reachable from the container too (createContainer runs there before
    # pivot_root, with the host paths still visible).
    bundle.config["hooks"] = {k: [recorder(tmp_path, k)] for k in
                              ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    bundle.args("true")
    return bundle


def test_all_hooks_run_in_lifecycle_order(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    order = sorted(("prestart", "createRuntime", "createContainer", "poststart", "poststop"),
                   key=lambda k: int(read(tmp_path, k, "time")))
    assert order == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]


def test_hooks_get_the_state_on_stdin(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    st = json.loads(read(tmp_path, "createRuntime", "stdin"))
    assert st["id"] == cid and st["status"] == "created" and st["pid"] > 0
    assert st["bundle"] == str(hooked.path)
    assert json.loads(read(tmp_path, "poststart", "stdin"))["status"] == "running"
    assert json.loads(read(tmp_path, "poststop", "stdin"))["status"] == "stopped"


def test_hooks_get_their_args_and_exactly_their_env(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    assert read(tmp_path, "prestart", "args").split() == ["a1", "a2"]
    env = read(tmp_path, "prestart", "env")
    assert "HOOKVAR=yes" in env and "PATH=" not in env.replace("PWD=", "")


def test_create_container_hook_runs_in_the_container_mount_namespace(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    host = os.readlink("/proc/self/ns/mnt")
    assert read(tmp_path, "createRuntime", "mnt").strip() == host
    assert read(tmp_path, "createContainer", "mnt").strip() != host


def test_start_container_hook_runs_inside_the_container(ocirt, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                                    "options": ["rbind"]})
    # The path resolves in the container: /bin/sh is busybox there.
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /shared/state; hostname > /shared/host"]}]}
    bundle.config["hostname"] = "inside"
    bundle.args("true")
    ocirt.ok("run", "--bundle", str(bundle.path), cid)
    assert (shared / "host").read_text() == "inside\n"
    assert json.loads((shared / "state").read_text())["id"] == cid


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(ocirt, bundle, cid, kind):
    bundle.config["hooks"] = {kind: [{"path": "/bin/false"}]}
    bundle.args("true")
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1
    assert f"{kind} hook".encode() in p.stderr
    assert ocirt.ids() == []
    assert cgroup_dirs_named(cid) == []


def test_failing_start_container_hook_fails_start(ocirt, bundle, cid):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    bundle.args("true")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    p = ocirt("start", cid)
    assert p.returncode == 1 and b"startContainer hook" in p.stderr


def test_failing_poststart_hook_fails_start_and_stops_the_container(ocirt, bundle, cid):
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    p = ocirt("start", cid)
    assert p.returncode == 1 and b"poststart hook" in p.stderr
    deadline = time.monotonic() + 10
    while ocirt.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ocirt.state(cid)["status"] == "stopped"


def test_failing_poststop_hook_is_only_a_warning(ocirt, bundle, cid, tmp_path):
    after = recorder(tmp_path, "second")
    bundle.config["hooks"] = {"poststop": [{"path": "/bin/false"}, after]}
    bundle.args("true")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    ocirt.ok("start", cid)
    time.sleep(0.2)
    p = ocirt("delete", cid)
    assert p.returncode == 0
    assert b"poststop hook #0" in p.stderr
    assert (tmp_path / "second.out.stdin").exists()


def test_hook_timeout_kills_the_hook_and_fails(ocirt, bundle, cid):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                                 "timeout": 1}]}
    bundle.args("true")
    t = time.monotonic()
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode == 1 and b"timeout" in p.stderr
    assert time.monotonic() - t < 25


# --- where and how each kind runs, as in runc 1.1.5 -------------------------------------------

def test_runtime_hooks_run_from_the_bundle(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        assert read(tmp_path, kind, "cwd").strip() == str(hooked.path), kind


def test_create_container_hook_runs_from_the_rootfs(ocirt, hooked, cid, tmp_path):
    ocirt.ok("run", "--bundle", str(hooked.path), cid)
    assert read(tmp_path, "createContainer", "cwd").strip() == hooked.config["root"]["path"]


def test_create_container_hook_relative_paths_land_in_the_rootfs(ocirt, bundle, cid,
                                                                 rootfs_template):
    # The user's report: `touch ./lib/x` from a createContainer hook wrote into the host's /lib.
    rootfs = bundle.own_rootfs(rootfs_template)
    (rootfs / "lib").mkdir()
    name = f"hook-made-{cid}"
    bundle.config["hooks"] = {"createContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"touch ./lib/{name}"]}]}
    bundle.args("ls", f"/lib/{name}")
    on_host = Path("/lib", name)
    try:
        p = ocirt("run", "--bundle", str(bundle.path), cid)
        assert p.returncode == 0, p.stderr
        assert p.stdout == f"/lib/{name}\n".encode()      # seen inside the container
        assert (rootfs / "lib" / name).exists()
        assert not on_host.exists()
    finally:
        if on_host.exists():
            on_host.unlink()


def test_start_container_hook_runs_from_the_process_cwd(ocirt, bundle, cid, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind",
                                    "source": str(shared), "options": ["rbind"]})
    bundle.config["process"]["cwd"] = "/tmp"
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "pwd > /shared/cwd"]}]}
    bundle.args("true")
    ocirt.ok("run", "--bundle", str(bundle.path), cid)
    assert (shared / "cwd").read_text() == "/tmp\n"


def test_start_container_hook_runs_under_the_containers_seccomp_filter(ocirt, bundle, cid):
    # runc's tests/integration/seccomp.bats "runc run [seccomp] (startContainer hook)".
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL"}]}
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"]}]}
    bundle.args("/bin/true")
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode != 0
    assert b"error running hook" in p.stderr and b"bad system call" in p.stderr
    assert ocirt.ids() == []


def test_hooks_that_do_not_read_a_large_state_still_succeed(ocirt, bundle, cid):
    # The state reaches stdin whole before the hook starts: a hook that exits without reading
    # it cannot make the writer (the init, for startContainer) die of SIGPIPE.
    bundle.config["annotations"] = {"big": "x" * 300_000}
    bundle.config["hooks"] = {k: [{"path": "/bin/true"}]
                              for k in ("createRuntime", "createContainer", "startContainer")}
    bundle.args("true")
    ocirt.ok("run", "--bundle", str(bundle.path), cid)


def test_hooks_start_with_default_signals_and_an_empty_mask(ocirt, bundle, cid, tmp_path):
    # cp is the hook itself (a shell would change its own mask): it copies its own status,
    # startContainer's through a bind mount (its /bin/cp is the container's).
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind",
                                    "source": str(tmp_path), "options": ["rbind"]})
    kinds = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
             "poststop")
    dest = {k: tmp_path / f"{k}.status" for k in kinds}
    dest["startContainer"] = Path("/shared/startContainer.status")
    bundle.config["hooks"] = {k: [{"path": "/bin/cp", "args": ["cp", "/proc/self/status",
                                                               str(dest[k])]}] for k in kinds}
    bundle.args("true")
    ocirt.ok("run", "--bundle", str(bundle.path), cid, preexec_fn=ignore_and_block_signals)
    for kind in kinds:
        assert signal_masks((tmp_path / f"{kind}.status").read_text()) == NO_SIGNAL_MASKS, kind


def shared_object(soname: str) -> bytes:
    """A minimal x86-64 ELF shared object whose only content is its DT_SONAME: enough for
    ldconfig to link and cache it (runc's test builds one with gcc)."""
    ehdr_size, phdr_size = 64, 56
    dyn_off = ehdr_size + 2 * phdr_size
    str_off = dyn_off + 3 * 16
    dynamic = struct.pack("<6q", 14, 1, 5, str_off, 0, 0)     # DT_SONAME, DT_STRTAB, DT_NULL
    strtab = b"\0" + soname.encode() + b"\0"
    size = str_off + len(strtab)
    ehdr = (b"\x7fELF\x02\x01\x01" + b"\0" * 9
            + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, ehdr_size, 0, 0, ehdr_size, phdr_size,
                          2, 64, 0, 0))
    load = struct.pack("<IIQQQQQQ", 1, 4, 0, 0, 0, size, size, 0x1000)
    dyn = struct.pack("<IIQQQQQQ", 2, 4, dyn_off, dyn_off, dyn_off, 48, 48, 8)
    return ehdr + load + dyn + dynamic + strtab


def test_library_hooks_as_in_runc(ocirt, bundle, cid, rootfs_template):
    """runc's tests/integration/hooks.bats "runc run (hooks library tests)": a createRuntime
    hook bind-mounts a library into the container's /lib through nsenter, a createContainer
    hook does the same with paths relative to the rootfs, a startContainer hook runs
    ldconfig in the container, and the process finds both libraries in the cache."""
    if os.uname().machine != "x86_64":
        pytest.skip("the test library is built for x86-64")
    ldconfig = Path("/sbin/ldconfig")
    if "static" not in subprocess.run(["file", "-L", str(ldconfig)], capture_output=True,
                                      text=True).stdout:
        pytest.skip("needs a statically linked /sbin/ldconfig to copy into the rootfs")
    rootfs = bundle.own_rootfs(rootfs_template)
    shutil.copy2(ldconfig, rootfs / "sbin" / "ldconfig")
    libpath = rootfs / "lib"
    libpath.mkdir(exist_ok=True)
    cr, cc = "librunc-hooks-create-runtime.so", "librunc-hooks-create-container.so"
    for lib in (cr, cc):
        (bundle.path / f"{lib}.1.0.0").write_bytes(shared_object(f"{lib}.1"))
    # The state's pid, without jq.
    create_runtime = (f"pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p')\n"
                      f"touch \"{libpath}/{cr}.1.0.0\"\n"
                      f"nsenter -m -t $pid mount --bind \"{bundle.path}/{cr}.1.0.0\" "
                      f"\"{libpath}/{cr}.1.0.0\"\n")
    create_container = (f"touch ./lib/{cc}.1.0.0 && "
                        f"mount --bind {bundle.path}/{cc}.1.0.0 ./lib/{cc}.1.0.0")
    path = [f"PATH={os.environ['PATH']}"]
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/sh", "args": ["/bin/sh", "-c", create_runtime],
                           "env": path}],
        "createContainer": [{"path": "/bin/sh", "args": ["/bin/sh", "-c", create_container],
                             "env": path}],
        "startContainer": [{"path": "/bin/sh", "args": ["/bin/sh", "-c", "ldconfig"]}],
    }
    bundle.args("/bin/sh", "-c", "ldconfig -p | grep librunc")
    on_host = Path("/lib", f"{cc}.1.0.0")     # where a hook run from the host's / would write
    try:
        p = ocirt("run", "--bundle", str(bundle.path), cid)
        assert p.returncode == 0, p.stderr
        out = p.stdout.decode()
        assert cr in out and cc in out
        assert not on_host.exists()
    finally:
        if on_host.exists():
            on_host.unlink()
