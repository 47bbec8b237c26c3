"""What the container's process sees: checked from inside the running container."""

from __future__ import annotations

import os
import subprocess

from ocirt_testlib import run_out


def test_process_is_pid_1_in_a_new_pid_namespace(ocirt, bundle, cid):
    assert run_out(ocirt, bundle, cid, "echo $$") == "1\n"


def test_hostname_is_set_in_a_new_uts_namespace(ocirt, bundle, cid):
    bundle.config["hostname"] = "box1"
    assert run_out(ocirt, bundle, cid, "hostname") == "box1\n"


def test_domainname_is_set(ocirt, bundle, cid):
    bundle.config["domainname"] = "example.org"
    assert run_out(ocirt, bundle, cid, "cat /proc/sys/kernel/domainname") == "example.org\n"


def test_env_is_exactly_the_configured_one_plus_home(ocirt, bundle, cid):
    bundle.config["process"]["env"] = ["A=1", "PATH=/bin:/usr/bin", "B=two words"]
    bundle.args("env")
    p = ocirt.ok("run", "--bundle", str(bundle.path), cid)
    assert sorted(p.stdout.decode().splitlines()) == ["A=1", "B=two words", "HOME=/root",
                                                       "PATH=/bin:/usr/bin"]


def test_cwd_is_the_configured_one_and_is_created(ocirt, bundle, cid, rootfs_template):
    bundle.own_rootfs(rootfs_template)
    bundle.config["process"]["cwd"] = "/work/dir"
    assert run_out(ocirt, bundle, cid, "pwd") == "/work/dir\n"


def test_user_uid_gid_and_additional_gids(ocirt, bundle, cid):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 7]}
    out = run_out(ocirt, bundle, cid, "id -u; id -g; id -G")
    uid, gid, groups = out.splitlines()
    assert (uid, gid) == ("1000", "1001")
    assert sorted(groups.split()) == ["1001", "5", "7"]


def test_umask_is_applied(ocirt, bundle, cid):
    bundle.config["process"]["user"] = {"uid": 0, "gid": 0, "umask": 0o077}
    assert run_out(ocirt, bundle, cid, "umask") == "0077\n"


def test_default_umask_is_0022(ocirt, bundle, cid):
    assert run_out(ocirt, bundle, cid, "umask") == "0022\n"


def test_new_network_namespace_has_only_lo_and_it_is_up(ocirt, bundle, cid):
    out = run_out(ocirt, bundle, cid, "ip -o link")
    lines = out.strip().splitlines()
    assert len(lines) == 1 and ": lo:" in lines[0] and "UP" in lines[0]


def test_namespaces_differ_from_the_hosts(ocirt, bundle, cid):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    out = run_out(ocirt, bundle, cid,
                  "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done")
    inside = out.split()
    outside = [os.readlink(f"/proc/self/ns/{n}") for n in ("pid", "net", "ipc", "uts", "mnt", "cgroup")]
    assert all(a != b for a, b in zip(inside, outside))


def test_joining_a_network_namespace_by_path(ocirt, bundle, cid):
    name = f"ocirt-{cid[-8:]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "add", "veth7", "type", "veth",
                        "peer", "name", "veth8"], check=True)
        for ns in bundle.config["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = f"/run/netns/{name}"
        out = run_out(ocirt, bundle, cid, "ip -o link")
        assert "veth7" in out and "veth8" in out
    finally:
        subprocess.run(["ip", "netns", "del", name])


def test_omitted_namespace_is_shared_with_the_host(ocirt, bundle, cid):
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != "uts"]
    bundle.config.pop("hostname", None)
    out = run_out(ocirt, bundle, cid, "readlink /proc/self/ns/uts")
    assert out.strip() == os.readlink("/proc/self/ns/uts")


def test_standard_mounts_are_present(ocirt, bundle, cid):
    out = run_out(ocirt, bundle, cid, "cat /proc/self/mountinfo")
    kinds = {}
    for line in out.splitlines():
        pre, post = line.split(" - ")
        kinds[pre.split()[4]] = post.split()[0]
    assert kinds["/"] != "proc"
    assert kinds["/proc"] == "proc"
    assert kinds["/dev"] == "tmpfs"
    assert kinds["/dev/pts"] == "devpts"
    assert kinds["/dev/shm"] == "tmpfs"
    assert kinds["/dev/mqueue"] == "mqueue"
    assert kinds["/sys"] == "sysfs"


def test_default_devices_exist_with_right_numbers(ocirt, bundle, cid):
    out = run_out(ocirt, bundle, cid,
                  "for d in null zero full random urandom tty; do stat -c '%n %t:%T %F' /dev/$d; done")
    got = {l.split()[0]: l.split()[1] for l in out.splitlines()}
    assert got == {"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7",
                   "/dev/random": "1:8", "/dev/urandom": "1:9", "/dev/tty": "5:0"}


def test_dev_symlinks_exist(ocirt, bundle, cid):
    out = run_out(ocirt, bundle, cid,
                  "for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done")
    assert out.split() == ["fd=/proc/self/fd", "stdin=/proc/self/fd/0", "stdout=/proc/self/fd/1",
                           "stderr=/proc/self/fd/2", "ptmx=pts/ptmx"]


def test_configured_device_is_created(ocirt, bundle, cid):
    bundle.config["linux"]["devices"] = [{"path": "/dev/mydev", "type": "c", "major": 1,
                                          "minor": 7, "fileMode": 0o640, "uid": 0, "gid": 0}]
    out = run_out(ocirt, bundle, cid, "stat -c '%t:%T %a' /dev/mydev")
    assert out.split() == ["1:7", "640"]


def test_readonly_root(ocirt, bundle, cid):
    bundle.config["root"]["readonly"] = True
    out = run_out(ocirt, bundle, cid, "touch /x 2>&1; echo rc=$?")
    assert "Read-only file system" in out and "rc=1" in out


def test_masked_paths_read_empty(ocirt, bundle, cid):
    out = run_out(ocirt, bundle, cid, "wc -c < /proc/keys; ls /proc/acpi 2>/dev/null | wc -l")
    assert out.split() == ["0", "0"]


def test_readonly_paths_are_read_only(ocirt, bundle, cid):
    out = run_out(ocirt, bundle, cid, "echo 1 > /proc/sys/kernel/ns_last_pid 2>&1; echo rc=$?")
    assert "rc=1" in out


def test_sysctl_is_applied_in_the_container_namespace(ocirt, bundle, cid):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    assert run_out(ocirt, bundle, cid, "cat /proc/sys/net/ipv4/ip_forward") == "1\n"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host = f.read()
    assert host in ("0\n", "1\n")


def test_process_runs_in_its_own_cgroup(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = ocirt.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    with open("/proc/self/cgroup") as f:
        mine = f.read().splitlines()
    mem = [l for l in lines if ":memory:" in l][0]
    assert mem not in mine and mem.endswith(cid)


def test_cgroup_namespace_root_is_the_container_cgroup(ocirt, bundle, cid):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    out = run_out(ocirt, bundle, cid, "cat /proc/self/cgroup")
    assert all(line.endswith(":/") for line in out.splitlines()), out


def _host_keyrings() -> str:
    with open("/proc/keys") as f:
        return f.read()


def test_container_gets_its_own_session_keyring(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    assert f"_ses.{cid}:" in _host_keyrings()


def test_no_new_keyring_keeps_the_callers_session_keyring(ocirt, bundle, cid):
    bundle.args("sleep", "100")
    ocirt.ok("create", "--no-new-keyring", "--bundle", str(bundle.path), cid)
    assert f"_ses.{cid}:" not in _host_keyrings()


def test_stdio_on_the_hosts_dev_null_becomes_the_containers_dev_null(ocirt, bundle, cid):
    # runc's reOpenDevNull: an fd on a mount the container does not have could not be
    # checkpointed (criu: "Can't lookup mount").
    bundle.args("sleep", "100")
    ocirt.ok("run", "--detach", "--bundle", str(bundle.path), cid, stdin=subprocess.DEVNULL)
    pid = ocirt.state(cid)["pid"]
    dev_mount = next(line.split()[0] for line in open(f"/proc/{pid}/mountinfo")
                     if line.split()[4] == "/dev")
    fdinfo = open(f"/proc/{pid}/fdinfo/0").read()
    assert f"mnt_id:\t{dev_mount}\n" in fdinfo
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
