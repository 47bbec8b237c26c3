"""Kubernetes' path: containerd's CRI plugin (runtime.v1 over gRPC, as the kubelet speaks it)
with ocirt and with runc as runtime handlers (io.containerd.runc.v2, options.BinaryName). Pods
get a CNI bridge network, images come from a local registry through containerd's mirror
configuration; each test checks the CRI's answers and the processes from outside."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

import clientlib
import crilib
from crilib import Pod
from ocirt_testlib import cgroup_dirs, pids_with_cmdline, proc_status, read_cgroup_file

grpc = pytest.importorskip("grpc", reason="grpcio (setup.cfg's test extra)")

LOOP = ["sh", "-c", "while :; do sleep 0.1; done"]


class Pods:
    """Makes pods on the handler under test, and stops and removes what a test leaves."""

    def __init__(self, daemon: crilib.CriContainerd, cri: crilib.Cri, handler: str) -> None:
        self.cri, self.base, self.handler = cri, daemon.base, handler
        self.network, self.cgroup_parent = daemon.network, daemon.cgroup_parent
        self.made: list[Pod] = []

    def __call__(self, name: str, **kw) -> Pod:
        pod = Pod(self.cri, self.handler, name, **kw)
        self.made.append(pod)
        return pod

    def cleanup(self) -> None:
        for pod in self.made:
            if pod.id in self.cri.pods:
                pod.stop()
                pod.remove()


@pytest.fixture
def pods(cri_node, cri_handler):
    made = Pods(*cri_node, cri_handler)
    yield made
    made.cleanup()


def ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read()


def cgroup_file(pid: int, controller: str, name: str) -> str:
    return read_cgroup_file(cgroup_dirs(pid)[controller], name)


def test_cri_speaks_runtime_v1(cri_node):
    _, cri = cri_node
    v = cri.runtime.Version(cri.pb.VersionRequest(version="v1"), timeout=30)
    assert (v.runtime_name, v.runtime_api_version) == ("containerd", "v1")


def test_pod_sandbox_runs_on_the_handler_in_its_own_namespaces(pods):
    pod = pods("sandbox")
    st = pod.status().status
    assert st.state == pod.pb.SANDBOX_READY and st.runtime_handler == pods.handler
    assert ipaddress.ip_address(st.network.ip) in ipaddress.ip_network(pods.network.subnet)
    # The handler's binary made it: its own state, in the root the shim gave it.
    pid = pod.pid()
    state = crilib.runtime_state(pods.base, pods.handler, pod.id)
    assert state["status"] == "running" and state["pid"] == pid
    for kind in ("net", "ipc", "uts", "pid", "mnt"):
        assert ns(pid, kind) != ns(os.getpid(), kind), kind
    assert f"/{pods.cgroup_parent}/pod{pod.uid}/{pod.id}" in cgroup_of(pid)


def test_stopped_and_removed_pod_leaves_nothing(pods):
    pod = pods("gone")
    pid = pod.pid()
    pod.stop()
    assert pod.status().status.state == pod.pb.SANDBOX_NOTREADY
    assert clientlib.wait_until(lambda: not os.path.exists(f"/proc/{pid}"))
    pod.remove()
    with pytest.raises(grpc.RpcError) as e:
        pod.status()
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert crilib.runtime_state(pods.base, pods.handler, pod.id) is None
    bundle = os.path.join(pods.base, "state", "io.containerd.runtime.v2.task", "k8s.io", pod.id)
    assert not clientlib.mounts_under(bundle)


def test_container_joins_the_pod_with_its_own_pid_namespace(pods):
    pod = pods("shared")
    cid = pod.run("app", LOOP)
    pid, sandbox = pod.container_pid(cid), pod.pid()
    assert crilib.runtime_state(pods.base, pods.handler, cid)["pid"] == pid
    for kind in ("net", "ipc", "uts"):
        assert ns(pid, kind) == ns(sandbox, kind), kind
    assert ns(pid, "pid") != ns(sandbox, "pid")
    assert f"/{pods.cgroup_parent}/pod{pod.uid}/{cid}" in cgroup_of(pid)
    r = pod.exec_sync(cid, ["sh", "-c", "hostname; ip -4 addr show eth0"])
    out = r.stdout.decode()
    assert r.exit_code == 0 and out.startswith("shared\n"), r
    assert pod.status().status.network.ip in out


def test_shared_process_namespace_shows_the_pause_process(pods):
    # shareProcessNamespace: true, i.e. the pod's PID namespace (the sandbox's process is 1).
    pod = pods("sharedpid")
    cid = pod.run("app", LOOP, namespace_options=pod.pb.NamespaceOption(pid=pod.pb.POD))
    assert ns(pod.container_pid(cid), "pid") == ns(pod.pid(), "pid")
    r = pod.exec_sync(cid, ["cat", "/proc/1/cmdline"])
    assert r.stdout.split(b"\0")[:-1] == [a.encode() for a in crilib.PAUSE_COMMAND], r


def test_pod_sysctls_apply_in_the_pod_namespaces_only(pods):
    # Kubernetes' "safe" sysctls are per network or IPC namespace.
    sysctls = {"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shm_rmid_forced": "1"}
    host = {k: Path("/proc/sys", k.replace(".", "/")).read_text() for k in sysctls}
    pod = pods("sysctls", sysctls=sysctls)
    cid = pod.run("app", LOOP)
    for key, value in sysctls.items():
        r = pod.exec_sync(cid, ["cat", "/proc/sys/" + key.replace(".", "/")])
        assert r.stdout == f"{value}\n".encode(), (key, r)
    assert host == {k: Path("/proc/sys", k.replace(".", "/")).read_text() for k in sysctls}


def test_container_output_goes_to_the_cri_log(pods):
    pod = pods("logs")
    cid = pod.run("app", ["sh", "-c", "echo to-stdout; echo to-stderr >&2"])
    st = pod.wait_exited(cid)
    assert st and (st.exit_code, st.reason) == (0, "Completed"), st
    assert st.log_path == os.path.join(pod.log_dir, "app", "0.log")
    assert sorted(pod.log("app")) == [("stderr", "F", "to-stderr"), ("stdout", "F", "to-stdout")]


def test_exec_sync_returns_output_and_exit_code(pods):
    pod = pods("execsync")
    cid = pod.run("app", LOOP)
    r = pod.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 3)


def test_streaming_exec_through_the_returned_url(pods):
    pod = pods("exec")
    cid = pod.run("app", LOOP)
    url = pod.exec_url(cid, ["sh", "-c", "echo out; echo err >&2; exit 4"])
    stdout, stderr, status = crilib.stream_exec(url)
    assert (stdout, stderr, crilib.exit_code_of(status)) == (b"out\n", b"err\n", 4), status
    stdout, _, status = crilib.stream_exec(pod.exec_url(cid, ["cat", "/etc/hostname"]))
    assert (stdout, crilib.exit_code_of(status)) == (b"exec\n", 0)


def test_exec_sync_past_its_timeout_fails_and_kills_the_command(pods):
    # The kubelet's exec probes: a command running past the timeout is an error, and is killed.
    pod = pods("probe")
    cid = pod.run("app", LOOP)
    with pytest.raises(grpc.RpcError) as e:
        pod.exec_sync(cid, ["sleep", "987654"], timeout=1)
    assert "timeout" in e.value.details(), e.value.details()
    assert clientlib.wait_until(lambda: not pids_with_cmdline("sleep\0" "987654\0"))


def test_failed_start_reports_the_runtime_error(pods):
    pod = pods("badcmd")
    cid = pod.create("app", ["/nonexistent"])
    with pytest.raises(grpc.RpcError) as e:
        pod.start(cid)
    assert "/nonexistent" in e.value.details(), e.value.details()
    assert "no such file or directory" in e.value.details(), e.value.details()
    st = pod.container_status(cid).status
    assert (st.state, st.reason) == (pod.pb.CONTAINER_EXITED, "StartError"), st
    assert "no such file or directory" in st.message


def test_security_context_reaches_the_process(pods):
    pod = pods("secctx")
    pb = pod.pb
    cid = pod.run("app", LOOP, run_as_user=pb.Int64Value(value=1000),
                  run_as_group=pb.Int64Value(value=1000), readonly_rootfs=True,
                  no_new_privs=True, capabilities=pb.Capability(
                      drop_capabilities=["ALL"], add_capabilities=["NET_BIND_SERVICE"]),
                  seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault))
    status = proc_status(pod.container_pid(cid))
    assert status["Uid"].split() == ["1000"] * 4 and status["Gid"].split() == ["1000"] * 4
    assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")
    assert int(status["CapBnd"], 16) == 1 << 10  # CAP_NET_BIND_SERVICE alone
    r = pod.exec_sync(cid, ["sh", "-c", "id -u; touch /probe"])
    assert r.stdout == b"1000\n" and r.exit_code != 0
    assert b"Read-only file system" in r.stderr, r


def test_resources_reach_the_cgroup_and_update(pods):
    pod = pods("resources")
    pb = pod.pb
    cid = pod.run("app", LOOP, resources=pb.LinuxContainerResources(
        cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 << 20))
    pid = pod.container_pid(cid)
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert cgroup_file(pid, "cpu", "cpu.shares") == "512"
    pod.update_resources(cid, pb.LinuxContainerResources(
        cpu_period=100000, cpu_quota=20000, cpu_shares=256, memory_limit_in_bytes=96 << 20))
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "20000"
    assert cgroup_file(pid, "cpu", "cpu.shares") == "256"


def test_streaming_exec_with_a_terminal(pods):
    pod = pods("exectty")
    cid = pod.run("app", LOOP)
    url = pod.exec_url(cid, ["sh", "-c", "tty; test -t 1 && echo is-a-tty; exit 5"], tty=True)
    stdout, _, status = crilib.stream_exec(url)
    assert crilib.exit_code_of(status) == 5, status
    assert stdout.startswith(b"/dev/pts/") and b"is-a-tty\r\n" in stdout, stdout


def test_stop_container_delivers_sigterm_and_reports_the_exit_code(pods):
    pod = pods("stop")
    cid = pod.run("app", ["sh", "-c", 'trap "exit 7" TERM; while :; do sleep 0.1; done'])
    pod.stop_container(cid, timeout=30)
    st = pod.container_status(cid).status
    assert (st.state, st.exit_code, st.reason) == (pod.pb.CONTAINER_EXITED, 7, "Error"), st


def test_stop_container_kills_after_the_timeout(pods):
    pod = pods("kill")
    cid = pod.run("app", ["sh", "-c", 'trap "" TERM; while :; do sleep 0.1; done'])
    pod.stop_container(cid, timeout=1)
    st = pod.container_status(cid).status
    assert (st.state, st.exit_code) == (pod.pb.CONTAINER_EXITED, 128 + 9), st


def test_removed_container_is_gone_from_cri_runtime_and_cgroups(pods):
    pod = pods("rm")
    cid = pod.run("app", LOOP)
    pid = pod.container_pid(cid)
    cgroups = cgroup_dirs(pid)
    pod.stop_container(cid, timeout=0)
    pod.remove_container(cid)
    with pytest.raises(grpc.RpcError) as e:
        pod.container_status(cid)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert crilib.runtime_state(pods.base, pods.handler, cid) is None
    assert [d for d in cgroups.values() if os.path.exists(d)] == []


def test_bidirectional_mount_reaches_the_host(pods):
    # Kubernetes' mountPropagation: Bidirectional (privileged pods only): containerd wants the
    # volume on a shared mount, mounts it rshared and makes the container's root rshared.
    volume = os.path.join(pods.base, f"volume-{os.urandom(4).hex()}")
    os.makedirs(os.path.join(volume, "sub"))
    clientlib.check(clientlib.run(["mount", "--bind", volume, volume]))
    try:
        clientlib.check(clientlib.run(["mount", "--make-shared", volume]))
        pod = pods("propagation", privileged=True)
        pb = pod.pb
        mount = pb.Mount(container_path="/volume", host_path=volume,
                         propagation=pb.PROPAGATION_BIDIRECTIONAL)
        cid = pod.run("app", LOOP, mounts=[mount], privileged=True)
        r = pod.exec_sync(cid, ["mount", "-t", "tmpfs", "-o", "size=64k", "from-inside",
                                "/volume/sub"])
        assert r.exit_code == 0, r
        inner = os.path.join(volume, "sub")
        seen_inside = pod.exec_sync(cid, ["grep", " /volume", "/proc/self/mountinfo"]).stdout
        assert inner in clientlib.mounts_under(volume), (
            f"the container's mount is not on the host; inside: {seen_inside.decode()}")
        with open("/proc/self/mountinfo") as f:
            assert any(f" {inner} " in line and " from-inside " in line for line in f)
        pod.stop_container(cid, timeout=0)
        pod.remove_container(cid)
    finally:
        clientlib.unmount_all(volume)
    assert not clientlib.mounts_under(volume)
