"""Filesystem-side attacks on real ocirt containers, each shown to fail: mount destinations
through symlinks (CVE-2021-30465 family), /proc as a symlink or covered by another filesystem
(CVE-2019-19921 / CVE-2019-16884), maskedPaths and readonlyPaths really protecting, a swapped
/dev/null (CVE-2025-31133), sysctl restrictions, and the devices cgroup."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def run(ocirt, bundle, cid, script: str):
    bundle.sh(script)
    return ocirt("run", "--bundle", str(bundle.path), cid)


def run_out(ocirt, bundle, cid, script: str) -> str:
    p = run(ocirt, bundle, cid, script)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def host_mounts_under(*prefixes: str) -> list[str]:
    """Host mount lines whose mount point is one of `prefixes` or below it, or whose root or mount
    point mentions core_pattern (other suites run on this machine at the same time: only look at
    our own paths)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" - ")[0].split()
            root, point = fields[3], fields[4]
            if any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes) \
                    or "core_pattern" in root or "core_pattern" in point:
                out.append(line)
    return out


def container_mounts(out: str) -> dict[str, str]:
    kinds = {}
    for line in out.splitlines():
        if " - " in line:
            pre, post = line.split(" - ")
            kinds[pre.split()[4]] = post.split()[0]
    return kinds


# --- mount destinations through symlinks ------------------------------------------------------

def test_mount_destinations_through_symlinks_land_inside_the_rootfs(ocirt, bundle, cid,
                                                                     rootfs_template, tmp_path):
    rootfs = bundle.own_rootfs(rootfs_template)
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    # Absolute and relative (`..` beyond the root) symlinks that would reach host_dir on the host.
    os.symlink(str(host_dir), rootfs / "abs")
    os.symlink("../" * 12 + str(host_dir).lstrip("/"), rootfs / "var" / "rel")
    os.symlink("/etc", rootfs / "mnt-etc")
    src = tmp_path / "src-file"
    src.write_text("bound\n")
    bundle.config["mounts"] += [
        {"destination": "/abs/sub", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/var/rel/newfile", "type": "bind", "source": str(src),
         "options": ["bind"]},
        {"destination": "/mnt-etc", "type": "tmpfs", "source": "tmpfs"},
    ]
    before = host_mounts_under(str(tmp_path), "/etc")
    out = run_out(ocirt, bundle, cid, "cat /proc/self/mountinfo; ls /etc | wc -l; "
                  f"cat {host_dir}/newfile")
    kinds = container_mounts(out)
    # Inside, the mounts are where the symlinks resolve *in the container*.
    assert kinds[f"{host_dir}/sub"] == "tmpfs"
    assert kinds["/etc"] == "tmpfs"
    assert out.endswith("0\nbound\n"), out           # /etc is the empty tmpfs; the file is bound
    # Outside: no new mount, nothing created in the host directory, host /etc untouched.
    assert host_mounts_under(str(tmp_path), "/etc") == before
    assert list(host_dir.iterdir()) == []
    assert (rootfs / str(host_dir).lstrip("/") / "sub").is_dir()
    assert (rootfs / str(host_dir).lstrip("/") / "newfile").is_file()
    assert os.path.exists("/etc/passwd")


def test_proc_as_a_symlink_in_the_rootfs_fails_create(ocirt, bundle, cid, rootfs_template):
    rootfs = bundle.own_rootfs(rootfs_template)
    (rootfs / "proc").rmdir()
    (rootfs / "bad-proc").mkdir()
    os.symlink("/bad-proc", rootfs / "proc")
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode != 0
    assert b"must be mounted on ordinary directory" in p.stderr, p.stderr
    assert ocirt.ids() == []


def test_bind_over_proc_is_refused(ocirt, bundle, cid, tmp_path):
    fake = tmp_path / "fake-proc"
    (fake / "self" / "attr").mkdir(parents=True)
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/proc"]
    bundle.config["mounts"].append({"destination": "/proc", "type": "bind", "source": str(fake),
                                    "options": ["rbind"]})
    p = run(ocirt, bundle, cid, "true")
    assert p.returncode != 0
    assert b"is not of type proc" in p.stderr, p.stderr
    assert ocirt.ids() == []


def test_tmpfs_on_proc_self_is_refused(ocirt, bundle, cid):
    bundle.config["mounts"].append({"destination": "/proc/self", "type": "tmpfs",
                                    "source": "tmpfs"})
    p = run(ocirt, bundle, cid, "true")
    assert p.returncode != 0
    assert b"/proc/self" in p.stderr and b"cannot be mounted" in p.stderr, p.stderr
    assert ocirt.ids() == []


# --- maskedPaths, readonlyPaths, /sys ---------------------------------------------------------

def test_masked_files_read_empty(ocirt, bundle, cid):
    files = ["/proc/keys", "/proc/timer_list"]
    for f in files:
        assert os.path.getsize(f) or open(f).read(), f"{f} is empty on the host already"
    out = run_out(ocirt, bundle, cid, "; ".join(f"echo {f}=$(wc -c < {f})" for f in files))
    assert out.split() == [f"{f}=0" for f in files]


def test_masked_directories_are_empty_and_read_only(ocirt, bundle, cid):
    dirs = [d for d in bundle.config["linux"]["maskedPaths"] if os.path.isdir(d)]
    assert dirs, "no masked directory exists on this host"
    script = "; ".join(f"echo {d}=$(ls -A {d} | wc -l); touch {d}/x 2>&1" for d in dirs) + "; true"
    out = run_out(ocirt, bundle, cid, script)
    for d in dirs:
        assert f"{d}=0" in out.split(), out
        assert f"touch: {d}/x: Read-only file system" in out, out


def test_readonly_paths_are_read_only(ocirt, bundle, cid):
    ro = bundle.config["linux"]["readonlyPaths"]
    assert "/proc/sys" in ro and "/proc/sysrq-trigger" in ro
    # Opening for writing is refused by the mount (EROFS) before anything is written; the
    # sysrq-trigger probe only opens (O_APPEND), it never writes a key. (This kernel has no
    # CONFIG_MAGIC_SYSRQ: then the file is absent and is skipped, as in runc.)
    sysrq = os.path.exists("/proc/sysrq-trigger")
    out = run_out(ocirt, bundle, cid,
                  "echo x 2>&1 > /proc/sys/kernel/domainname; "
                  + ("(exec 3>>/proc/sysrq-trigger) 2>&1; " if sysrq else "") +
                  "(exec 3>>/proc/sys/vm/overcommit_memory) 2>&1; "
                  "cat /proc/self/mountinfo")
    assert "can't create /proc/sys/kernel/domainname: Read-only file system" in out
    if sysrq:
        assert "can't create /proc/sysrq-trigger: Read-only file system" in out
    assert "can't create /proc/sys/vm/overcommit_memory: Read-only file system" in out
    opts = {}
    for line in out.splitlines():
        if " - " in line:
            f = line.split(" - ")[0].split()
            opts[f[4]] = f[5].split(",")
    for path in ro:
        if os.path.exists(path):
            assert "ro" in opts[path], (path, opts.get(path))


def test_sys_is_read_only_in_the_default_spec(ocirt, bundle, cid):
    out = run_out(ocirt, bundle, cid, "touch /sys/x 2>&1; mkdir /sys/fs/cgroup/x 2>&1; "
                  "(exec 3>>/sys/kernel/uevent_helper) 2>&1; true")
    assert "touch: /sys/x: Read-only file system" in out
    assert "can't create directory '/sys/fs/cgroup/x': Read-only file system" in out
    assert "can't create /sys/kernel/uevent_helper: Read-only file system" in out


# --- /dev/null swapped for a symlink (CVE-2025-31133) --------------------------------------------

@pytest.mark.parametrize("kind", ["symlink", "regular-file"])
def test_swapped_dev_null_fails_create_and_binds_nothing(ocirt, bundle, cid, rootfs_template,
                                                         kind):
    rootfs = bundle.own_rootfs(rootfs_template)
    null = rootfs / "dev" / "null"
    if kind == "symlink":
        os.symlink("/proc/sys/kernel/core_pattern", null)
    else:
        null.write_text("")
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]
    assert "/proc/keys" in bundle.config["linux"]["maskedPaths"]
    bundle.write()
    before = host_mounts_under(str(bundle.path))
    p = ocirt("create", "--bundle", str(bundle.path), cid)
    assert p.returncode != 0
    assert b"/dev/null" in p.stderr, p.stderr
    assert host_mounts_under(str(bundle.path)) == before == []
    assert ocirt.ids() == []
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read().strip() != ""


# --- sysctl -------------------------------------------------------------------------------------

def test_non_namespaced_sysctl_is_rejected_at_create(ocirt, bundle, cid):
    bundle.config["linux"]["sysctl"] = {"kernel.core_pattern": "|/tmp/x"}
    p = run(ocirt, bundle, cid, "true")
    assert p.returncode != 0
    assert b"kernel.core_pattern" in p.stderr and b"not in a separate kernel namespace" \
        in p.stderr, p.stderr
    assert ocirt.ids() == []


def test_net_sysctl_without_a_new_network_namespace_is_rejected(ocirt, bundle, cid):
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != "network"]
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "555"}
    p = run(ocirt, bundle, cid, "true")
    assert p.returncode != 0
    assert b"net.ipv4.ip_unprivileged_port_start" in p.stderr and b"network namespace" \
        in p.stderr, p.stderr
    assert ocirt.ids() == []


def test_net_sysctl_is_applied_inside_only(ocirt, bundle, cid):
    path = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
    host = open(path).read()
    value = "555" if host.strip() != "555" else "556"
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": value}
    assert run_out(ocirt, bundle, cid, f"cat {path}") == value + "\n"
    assert open(path).read() == host


# --- devices ------------------------------------------------------------------------------------

def _with_mknod(bundle):
    c = bundle.config["process"]["capabilities"]
    for s in ("bounding", "effective", "permitted"):
        c[s] = c[s] + ["CAP_MKNOD"]


def test_mknod_of_a_denied_device_may_succeed_but_open_is_refused(ocirt, bundle, cid):
    _with_mknod(bundle)
    out = run_out(ocirt, bundle, cid,
                  "mknod /dev/sda-x b 8 0 && echo made; head -c1 /dev/sda-x 2>&1; "
                  "echo rc=$?; head -c1 /dev/zero | wc -c")
    assert "made" in out, out
    assert "Operation not permitted" in out and "rc=1" in out, out
    assert out.endswith("1\n")                      # /dev/zero (allowed by default) works


@pytest.mark.parametrize("rule", ["allow", "deny", "none"])
def test_listed_device_opens_only_when_the_device_cgroup_allows_it(ocirt, bundle, cid, rule):
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no /dev/loop-control on this host")
    linux = bundle.config["linux"]
    # loop-control: opening it (without any ioctl) changes nothing.
    linux["devices"] = [{"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237,
                         "fileMode": 0o666}]
    if rule != "none":
        linux["resources"]["devices"].append({"allow": rule == "allow", "type": "c",
                                              "major": 10, "minor": 237, "access": "rwm"})
    out = run_out(ocirt, bundle, cid,
                  "stat -c '%F %t:%T' /dev/loop-control; "
                  "if (exec 3</dev/loop-control) 2>&1; then echo opened; else echo refused; fi")
    assert out.startswith("character special file a:ed\n"), out
    if rule == "allow":
        assert out.endswith("\nopened\n"), out
    else:
        assert "can't open /dev/loop-control: Operation not permitted\nrefused\n" in out, out
