"""The rootfs of a real (forked) container, checked from inside."""

from __future__ import annotations

import errno
import os

import pytest

import rootfs_harness as harness
from ocirt.linux import procfs
from ocirt.linux import syscalls as sc
from ocirt.rootfs import setup


def mountinfo(output: str) -> dict[str, tuple[str, str, str, str]]:
    """destination -> (mount options, fstype, source, super options), from inside."""
    out = {}
    for line in output.splitlines():
        if " - " not in line:
            continue
        pre, post = line.split(" - ", 1)
        f = pre.split()
        fs = post.split()
        out[f[4]] = (f[5], fs[0], fs[1], fs[2] if len(fs) > 2 else "")
    return out


def test_default_spec_mounts_devices_and_masks(bundle):
    plan = setup.plan(harness.runc_spec_config(), "rootfs", bundle.path)
    res = harness.run(plan, script=(
        "cat /proc/self/mountinfo; echo ==; "
        "stat -c '%n %F %t:%T %a %u:%g' /dev/null /dev/zero /dev/full /dev/random "
        "/dev/urandom /dev/tty; echo ==; "
        "for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l); done; echo ==; "
        "echo keys=$(cat /proc/keys | wc -c); echo acpi=$(ls -A /proc/acpi | wc -l); "
        "touch /proc/acpi/x 2>&1; touch /x 2>&1; "
        "echo 1 > /proc/sys/kernel/hostname 2>&1; echo pid=$$"))
    assert res.status != 0 or res.error is None
    assert res.error is None, res.error
    info_part, dev_part, link_part, rest = res.output.split("==\n")
    mi = mountinfo(info_part)
    assert mi["/"][0].startswith("ro,")
    assert mi["/proc"][1] == "proc"
    assert mi["/dev"][:3] == ("rw,nosuid", "tmpfs", "tmpfs")
    assert "size=65536k" in mi["/dev"][3] and "mode=755" in mi["/dev"][3]
    assert mi["/dev/pts"][:2] == ("rw,nosuid,noexec,relatime", "devpts")
    assert "ptmxmode=666" in mi["/dev/pts"][3] and "gid=5" in mi["/dev/pts"][3]
    assert mi["/dev/shm"][:3] == ("rw,nosuid,nodev,noexec,relatime", "tmpfs", "shm")
    assert mi["/dev/mqueue"][:2] == ("rw,nosuid,nodev,noexec,relatime", "mqueue")
    assert mi["/sys"][:2] == ("ro,nosuid,nodev,noexec,relatime", "sysfs")
    assert mi["/sys/fs/cgroup"][:2] == ("ro,nosuid,nodev,noexec,relatime", "tmpfs")
    for h in ("cpu", "memory", "devices", "pids", "systemd", "unified"):
        opts, fstype = mi[f"/sys/fs/cgroup/{h}"][:2]
        assert opts == "ro,nosuid,nodev,noexec,relatime"
        assert fstype == ("cgroup2" if h == "unified" else "cgroup")
    for p in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"):
        assert mi[p][:2] == ("ro,nosuid,nodev,noexec,relatime", "proc")
    assert mi["/proc/acpi"][:2] == ("ro,relatime", "tmpfs")
    assert mi["/sys/firmware"][:2] == ("ro,relatime", "tmpfs")
    assert mi["/proc/keys"][1] == "tmpfs"  # the /dev/null of the container's /dev
    devs = dev_part.split("\n")
    expect = {"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7", "/dev/random": "1:8",
              "/dev/urandom": "1:9", "/dev/tty": "5:0"}
    for line in filter(None, devs):
        name, _, rest_ = line.partition(" ")
        assert rest_ == f"character special file {expect[name]} 666 0:0"
    links = dict(line.split(" ", 1) for line in link_part.splitlines())
    assert links == {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
                     "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
                     "ptmx": "pts/ptmx"}
    assert "keys=0" in rest and "acpi=0" in rest
    assert "touch: /proc/acpi/x: Read-only file system" in rest
    assert "touch: /x: Read-only file system" in rest
    assert "Read-only file system" in rest.split("\n")[4]
    assert "pid=1" in rest
    # nothing was mounted outside the rootfs, even inside the container's namespace
    assert all(m == bundle.rootfs or m.startswith(bundle.rootfs + "/") for m in res.new_mounts)


def test_bind_options_ro_recursive_propagation_and_file(bundle):
    src = os.path.join(bundle.path, "vol")
    os.makedirs(f"{src}/sub")
    with open(f"{src}/file", "w") as f:
        f.write("hello\n")
    cfg = harness.runc_spec_config()
    cfg["root"]["readonly"] = False
    cfg["mounts"] += [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        # a tmpfs inside the source, to see what rbind + rro do to submounts
        {"destination": "/v-ro", "type": "bind", "source": "vol",
         "options": ["rbind", "ro", "nosuid", "nodev", "private"]},
        {"destination": "/v-rro", "source": src, "options": ["rbind", "rro", "rnoexec"]},
        {"destination": "/etc/hostfile", "source": f"{src}/file", "options": ["bind", "ro"]},
        {"destination": "/v-shared", "source": src,
         "options": ["bind", "shared", "nosymfollow", "noatime"]},
    ]
    plan = setup.plan(cfg, "rootfs", bundle.path)
    res = harness.run(plan, script=(
        "cat /proc/self/mountinfo; echo ==; cat /etc/hostfile; "
        "touch /v-ro/x 2>&1; touch /v-rro/x 2>&1; touch /v-shared/ok && echo rw-ok"))
    assert res.error is None, res.error
    info, rest = res.output.split("==\n")
    lines = {line.split()[4]: line for line in info.splitlines()}
    mi = mountinfo(info)
    assert mi["/v-ro"][0] == "ro,nosuid,nodev,relatime"
    assert mi["/v-rro"][0] == "ro,noexec,relatime"
    assert mi["/etc/hostfile"][0].startswith("ro,")
    assert mi["/v-shared"][0] == "rw,noatime,nosymfollow"
    assert "shared:" in lines["/v-shared"]
    assert "shared:" not in lines["/v-ro"]
    assert "hello" in rest
    assert "touch: /v-ro/x: Read-only file system" in rest
    assert "touch: /v-rro/x: Read-only file system" in rest
    assert "rw-ok" in rest and os.path.exists(f"{src}/ok")


def test_rro_reaches_submounts(bundle):
    src = os.path.join(bundle.path, "vol")
    os.makedirs(f"{src}/sub")
    cfg = harness.runc_spec_config()
    cfg["mounts"] += [
        {"destination": "/data", "type": "bind", "source": src, "options": ["rbind"]},
        {"destination": "/data/sub", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/view", "type": "bind", "source": "/proc/self/root" + bundle.rootfs +
         "/data", "options": ["rbind", "rro"]},
    ]
    plan = setup.plan(cfg, "rootfs", bundle.path)

    def probe():
        out = {}
        for p in ("/view/x", "/view/sub/x", "/data/sub/x"):
            try:
                open(p, "w").close()
                out[p] = "ok"
            except OSError as e:
                out[p] = errno.errorcode[e.errno]
        return out

    res = harness.run(plan, probe=probe)
    assert res.error is None, res.error
    assert res.value == {"/view/x": "EROFS", "/view/sub/x": "EROFS", "/data/sub/x": "ok"}


def test_tmpcopyup_and_tmpfs_keeps_directory_mode(bundle):
    os.makedirs(bundle.at("/etc/conf.d"))
    with open(bundle.at("/etc/conf.d/a"), "w") as f:
        f.write("copied\n")
    os.symlink("a", bundle.at("/etc/conf.d/link"))
    os.chmod(bundle.at("/etc/conf.d"), 0o750)
    cfg = harness.runc_spec_config()
    cfg["mounts"].append({"destination": "/etc/conf.d", "type": "tmpfs", "source": "tmpfs",
                          "options": ["tmpcopyup", "nodev"]})
    plan = setup.plan(cfg, "rootfs", bundle.path)
    res = harness.run(plan, script="stat -c '%a %F' /etc/conf.d; cat /etc/conf.d/link; "
                                   "grep ' /etc/conf.d ' /proc/self/mountinfo")
    assert res.error is None, res.error
    assert "750 directory" in res.output and "copied" in res.output
    assert "- tmpfs tmpfs" in res.output


def test_linux_devices_and_existing_matching_node(bundle):
    cfg = harness.runc_spec_config()
    cfg["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640,
         "uid": 0, "gid": 5},
        {"path": "/dev/sub/loopy", "type": "b", "major": 7, "minor": 0},
        {"path": "/dev/fifo", "type": "p"},
    ]
    plan = setup.plan(cfg, "rootfs", bundle.path)
    res = harness.run(plan, script="stat -c '%n %F %t:%T %a %u:%g' /dev/fuse /dev/sub/loopy "
                                   "/dev/fifo")
    assert res.error is None, res.error
    assert "/dev/fuse character special file a:e5 640 0:5" in res.output
    assert "/dev/sub/loopy block special file 7:0 666 0:0" in res.output
    assert "/dev/fifo fifo 0:0 666 0:0" in res.output


def test_no_dev_mount_creates_nodes_in_image_dev(bundle):
    cfg = harness.runc_spec_config()
    cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
    os.mknod(bundle.at("/dev/null"), 0o666 | 0o020000, os.makedev(1, 3))  # matching: reused
    plan = setup.plan(cfg, "rootfs", bundle.path)
    res = harness.run(plan, script="ls /dev | tr '\\n' ' '")
    assert res.error is None, res.error
    assert res.output.split() == sorted(["fd", "full", "null", "ptmx", "random", "stderr",
                                         "stdin", "stdout", "tty", "urandom", "zero"])


def test_dev_bind_skips_device_setup(bundle):
    devdir = os.path.join(bundle.path, "mydev")
    os.mkdir(devdir)
    cfg = harness.runc_spec_config()
    cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
    cfg["mounts"].append({"destination": "/dev", "source": devdir, "options": ["rbind"]})
    cfg["linux"]["maskedPaths"] = ["/proc/acpi"]
    plan = setup.plan(cfg, "rootfs", bundle.path)
    res = harness.run(plan, script="ls -A /dev | wc -l")
    assert res.error is None, res.error
    assert res.output.strip() == "0"


def test_readonly_dev_is_applied_after_devices(bundle):
    cfg = harness.runc_spec_config()
    cfg["mounts"][1]["options"].append("ro")
    plan = setup.plan(cfg, "rootfs", bundle.path)
    res = harness.run(plan, script="cat /dev/null && echo null-ok; touch /dev/x 2>&1; "
                                   "grep ' /dev ' /proc/self/mountinfo")
    assert res.error is None, res.error
    assert "null-ok" in res.output and "Read-only file system" in res.output
    assert " /dev ro,nosuid " in res.output


@pytest.mark.parametrize("prop,tag", [("shared", "shared:"), ("private", None),
                                      ("slave", None), ("unbindable", "unbindable")])
def test_rootfs_propagation(bundle, prop, tag):
    cfg = harness.runc_spec_config()
    cfg["linux"]["rootfsPropagation"] = prop
    plan = setup.plan(cfg, "rootfs", bundle.path)
    res = harness.run(plan, script="cat /proc/self/mountinfo")
    assert res.error is None, res.error
    line = next(x for x in res.output.splitlines() if x.split()[4] == "/")
    if tag:
        assert tag in line
    else:
        assert "shared:" not in line and "unbindable" not in line


def test_no_pivot_move_root(bundle):
    plan = setup.plan(harness.runc_spec_config(), "rootfs", bundle.path)
    res = harness.run(plan, no_pivot=True, script=(
        "ls /bin/busybox; cat /proc/self/mountinfo"))
    assert res.error is None, res.error
    assert "/bin/busybox" in res.output
    mi = mountinfo(res.output)
    assert mi["/proc"][1] == "proc" and mi["/sys"][1] == "sysfs"


def test_console_uses_container_devpts(bundle):
    cfg = harness.runc_spec_config()
    cfg["process"]["terminal"] = True
    plan = setup.plan(cfg, "rootfs", bundle.path)

    def probe():
        master, peer, name = setup.console(plan, {"height": 30, "width": 100})
        import fcntl, struct, termios  # noqa: E401 (already loaded before pivot by setup)
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(peer, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        st = os.stat("/dev/console")
        with open("/proc/self/mountinfo") as f:
            line = next(x for x in f if " /dev/console " in x)
        os.write(peer, b"hi\n")
        echoed = os.read(master, 100)
        return {"name": name, "size": [rows, cols], "major": os.major(st.st_rdev),
                "mount": line.split(" - ")[1].split()[0], "echo": echoed.decode()}

    res = harness.run(plan, probe=probe)
    assert res.error is None, res.error
    v = res.value
    assert v["name"].startswith("/dev/pts/") and v["size"] == [30, 100]
    assert v["major"] == 136 and v["mount"] == "devpts" and "hi" in v["echo"]


def test_sysctl_applied_in_container_netns(bundle):
    cfg = harness.runc_spec_config()
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "net/ipv4/conf/all/forwarding": "1",
                              "kernel.shmmni": "1234"}
    host_before = open("/proc/sys/net/ipv4/ip_forward").read()
    plan = setup.plan(cfg, "rootfs", bundle.path)
    res = harness.run(plan, script="cat /proc/sys/net/ipv4/ip_forward "
                                   "/proc/sys/net/ipv4/conf/all/forwarding /proc/sys/kernel/shmmni")
    assert res.error is None, res.error
    assert res.output.split() == ["1", "1", "1234"]
    assert open("/proc/sys/net/ipv4/ip_forward").read() == host_before


def test_cgroup_namespace_mounts_fresh_hierarchies(bundle):
    cfg = harness.runc_spec_config()
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    plan = setup.plan(cfg, "rootfs", bundle.path)
    assert plan.cgroupns

    res = harness.run(plan, extra_ns=sc.CLONE_NEWCGROUP,
                      script="grep /sys/fs/cgroup/ /proc/self/mountinfo")
    assert res.error is None, res.error
    lines = res.output.splitlines()
    assert len(lines) >= 9
    for line in lines:
        assert line.split()[3] == "/"
        assert line.split()[5] == "ro,nosuid,nodev,noexec,relatime"


def test_procfs_handle_closed_after_finalize(bundle):
    plan = setup.plan(harness.runc_spec_config(), "rootfs", bundle.path)
    res = harness.run(plan, probe=lambda: procfs._handle is None)
    assert res.value is True
