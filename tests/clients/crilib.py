"""containerd's CRI plugin driven as the kubelet drives it: a private containerd with ocirt and
runc as runtime handlers, a local registry serving the images (under a made-up registry name,
through containerd's hosts.toml), a CNI network in the test's own directories, and a client of
the CRI gRPC API (runtime.v1) built at test time from cri_api.proto."""

from __future__ import annotations

import base64
import importlib
import json
import os
import socket
import sys
import urllib.parse
import uuid
from pathlib import Path

# gRPC (imported later, with the generated stubs) reads this once: its fork handlers abort a
# child forked while its threads run, and other tests fork in this process (tests/rootfs),
# none of whose children uses gRPC.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from clientlib import REPO, Containerd, check, docker_archive, run, runtimes, wait_until

sys.path.insert(0, str(REPO / "tests" / "ocimg"))
from ocimgtest_registry import Registry, free_port  # noqa: E402

PROTO = Path(__file__).with_name("cri_api.proto")
REGISTRY_NAME = "registry.ocirt.test"  # resolved only through the mirror configuration
IMAGE = f"{REGISTRY_NAME}/busybox:test"
PAUSE_IMAGE = f"{REGISTRY_NAME}/pause:test"
PAUSE_COMMAND = ["/bin/sleep", "1000000000"]  # the pause stand-in's entrypoint
HANDLERS = ("ocirt", "runc")
CNI_PLUGINS_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
CNI_STATE = "/var/lib/cni"  # libcni's cache (results/), not configurable in containerd 1.6
CNI_CACHE = f"{CNI_STATE}/results"


def load_api(out_dir: str):
    """(messages, stubs): Python modules generated from cri_api.proto into out_dir."""
    from grpc_tools import protoc
    os.makedirs(out_dir, exist_ok=True)
    args = ["protoc", f"-I{PROTO.parent}", f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}", str(PROTO)]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    sys.path.insert(0, out_dir)
    try:
        return importlib.import_module("cri_api_pb2"), importlib.import_module("cri_api_pb2_grpc")
    finally:
        sys.path.remove(out_dir)


# --- the images, in a registry ------------------------------------------------------------

def push_images(base: str, registry: Registry) -> None:
    """The busybox image and a pause stand-in (busybox sleeping) into the registry."""
    for name, fields in (("busybox", {}), ("pause", {"Entrypoint": PAUSE_COMMAND, "Cmd": []})):
        archive = docker_archive(Path(base) / f"{name}.tar", f"{name}:test", **fields)
        check(run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                   f"docker-archive:{archive}", f"docker://{registry.host}/{name}:test"],
                  timeout=120))


def hosts_toml(registry: Registry) -> str:
    """containerd's registry host configuration: REGISTRY_NAME is served by the local
    registry, over plain HTTP."""
    return (f'server = "http://{registry.host}"\n\n'
            f'[host."http://{registry.host}"]\n  capabilities = ["pull", "resolve"]\n')


# --- CNI ------------------------------------------------------------------------------------

class CniNetwork:
    """A bridge network without gateway or masquerading (no forwarding, no iptables on the
    host), addresses from host-local kept under base, plus loopback in the pod. Its name,
    bridge and subnet come from tag, so that test sessions side by side do not meet."""

    PLUGINS = ("bridge", "host-local", "loopback")

    def __init__(self, base: str, tag: str) -> None:
        self.base = base
        self.name = f"ocirt-cri-{tag}"
        self.bridge = f"ocirt{tag}"[:15]  # IFNAMSIZ
        self.subnet = f"10.231.{int(tag[:2], 16)}.0/24"
        self.conf_dir = os.path.join(base, "cni", "net.d")
        self.bin_dir = os.path.join(base, "cni", "bin")

    def conflist(self) -> dict:
        return {
            "cniVersion": "1.0.0", "name": self.name,
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": False, "ipMasq": False,
                 "ipam": {"type": "host-local", "dataDir": os.path.join(self.base, "cni", "ipam"),
                          "ranges": [[{"subnet": self.subnet}]]}},
                {"type": "loopback"},
            ],
        }

    def write(self) -> None:
        """The configuration, and links to the plugins it uses, under base."""
        os.makedirs(self.conf_dir)
        os.makedirs(self.bin_dir)
        for plugin in self.PLUGINS:
            os.symlink(os.path.join(CNI_PLUGINS_DIR, plugin), os.path.join(self.bin_dir, plugin))
        Path(self.conf_dir, f"10-{self.name}.conflist").write_text(json.dumps(self.conflist()))

    def leftovers(self) -> list[str]:
        """libcni's cached results for this network: each goes with its pod's teardown."""
        if not os.path.isdir(CNI_CACHE):
            return []
        return [os.path.join(CNI_CACHE, f) for f in os.listdir(CNI_CACHE)
                if f.startswith(self.name + "-")]

    def remove(self, remove_cache_dirs: bool) -> None:
        """The bridge (the plugin keeps it for the next pod), any cached result left and,
        when libcni created it for these tests, its cache directory."""
        if os.path.exists(f"/sys/class/net/{self.bridge}"):
            check(run(["ip", "link", "del", self.bridge]))
        for path in self.leftovers():
            os.unlink(path)
        if remove_cache_dirs:
            for d in (CNI_CACHE, CNI_STATE):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def host_network_settings() -> dict[str, str]:
    """The host's settings a CNI plugin may change, to compare before and after."""
    settings = {}
    for key in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"):
        try:
            settings[key] = Path("/proc/sys", key).read_text()
        except OSError:
            pass
    for table in ("filter", "nat"):
        p = run(["iptables-save", "-t", table])
        settings[f"iptables {table}"] = "\n".join(
            line for line in p.stdout.splitlines() if not line.startswith(("#", ":")))
    return settings


def restore_host_network(before: dict[str, str]) -> None:
    """Write back the forwarding settings host_network_settings() saw (iptables rules are
    only compared: nothing here adds any)."""
    for key, value in before.items():
        if key.startswith("net/") and Path("/proc/sys", key).read_text() != value:
            Path("/proc/sys", key).write_text(value)


# --- containerd with the CRI plugin --------------------------------------------------------

CRI_TOML = """
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{stream_port}"
  enable_selinux = false
  # Pods get oom_score_adj -998 otherwise, and root here lacks CAP_SYS_RESOURCE to lower it
  # (every runtime fails): keep it no lower than containerd's own, as in a user namespace.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
{runtimes}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{base}/certs.d"
"""

RUNTIME_TOML = """\
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
        BinaryName = "{binary}"
        Root = "{base}/{name}-root"
"""


class CriContainerd(Containerd):
    """A private containerd serving the CRI, with one runtime handler per runtime (ocirt and
    runc, each through io.containerd.runc.v2 with its own BinaryName and state root)."""

    def __init__(self, base: str, registry: Registry) -> None:
        tag = os.urandom(3).hex()
        self.cgroup_parent = f"ocirt-cri-{tag}"  # the pods' parent cgroup
        self.network = CniNetwork(base, tag)
        self.network.write()
        hosts = Path(base, "certs.d", REGISTRY_NAME)
        hosts.mkdir(parents=True)
        (hosts / "hosts.toml").write_text(hosts_toml(registry))
        handlers = "".join(RUNTIME_TOML.format(name=name, binary=runtimes()[name], base=base)
                           for name in HANDLERS)
        super().__init__(base, CRI_TOML.format(
            pause=PAUSE_IMAGE, stream_port=free_port(), runtimes=handlers,
            cni_bin=self.network.bin_dir, cni_conf=self.network.conf_dir, base=base),
            namespace="k8s.io")

    def channel(self):
        import grpc
        return grpc.insecure_channel(f"unix://{self.address}")


class Cri:
    """The kubelet's side: RuntimeService and ImageService stubs, and the pods this client
    made, so that cleanup() takes down whatever a failed test left behind."""

    def __init__(self, daemon: CriContainerd, api_dir: str) -> None:
        self.daemon = daemon
        self.pb, grpc_stubs = load_api(api_dir)
        self.channel = daemon.channel()
        self.runtime = grpc_stubs.RuntimeServiceStub(self.channel)
        self.images = grpc_stubs.ImageServiceStub(self.channel)
        self.pods: list[str] = []

    def cleanup(self) -> None:
        """Stop and remove every pod (with its containers) this client made."""
        for pod in self.pods:
            try:
                self.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod),
                                            timeout=60)
                self.runtime.RemovePodSandbox(
                    self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
            except Exception:  # noqa: BLE001 - best effort; the daemon's stop follows
                pass
        self.pods.clear()
        self.channel.close()


# --- streaming exec (the URL that Exec returns) --------------------------------------------

CHANNEL_PROTOCOL = "v4.channel.k8s.io"  # one byte of stream number, then the data


def stream_exec(url: str, timeout: float = 30) -> tuple[bytes, bytes, dict]:
    """Run what an Exec URL names through its WebSocket (Kubernetes' channel protocol, as the
    kubelet's streaming proxy does); returns (stdout, stderr, the final status)."""
    u = urllib.parse.urlsplit(url)
    target = f"{u.path}?{u.query}" if u.query else u.path
    key = base64.b64encode(os.urandom(16)).decode()
    out: dict[int, bytearray] = {1: bytearray(), 2: bytearray(), 3: bytearray()}
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.sendall((f"GET {target} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Protocol: {CHANNEL_PROTOCOL}\r\n\r\n").encode())
        f = s.makefile("rb")
        status_line = f.readline()
        if b" 101 " not in status_line:
            raise RuntimeError(f"no WebSocket upgrade from {url}: {status_line!r}")
        while f.readline() not in (b"\r\n", b""):
            pass
        while True:
            opcode, payload = _read_frame(f)
            if opcode is None or opcode == 0x8:  # end of stream or close
                break
            if opcode in (0x1, 0x2) and payload:
                out.setdefault(payload[0], bytearray()).extend(payload[1:])
    status = json.loads(out[3]) if out[3] else {}
    return bytes(out[1]), bytes(out[2]), status


def _read_frame(f) -> tuple[int | None, bytes]:
    head = f.read(2)
    if len(head) < 2:
        return None, b""
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(f.read(2), "big")
    elif length == 127:
        length = int.from_bytes(f.read(8), "big")
    mask = f.read(4) if head[1] & 0x80 else b""
    data = f.read(length)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def exit_code_of(status: dict) -> int:
    """The exit code in a channel protocol status: 0 on Success, else the ExitCode cause."""
    if status.get("status") == "Success":
        return 0
    for cause in status.get("details", {}).get("causes", []):
        if cause.get("reason") == "ExitCode":
            return int(cause["message"])
    raise AssertionError(f"no exit code in {status}")


def start_registry(base: str) -> Registry:
    workdir = os.path.join(base, "registry")
    os.makedirs(workdir)
    return Registry(workdir, free_port()).start()


# --- a pod, as the kubelet makes one ----------------------------------------------------------

class Pod:
    """One pod sandbox on one runtime handler, and its containers: the kubelet's calls, in
    its order (pull, create, start; stop, remove; the pod last)."""

    def __init__(self, cri: Cri, handler: str, name: str, privileged: bool = False,
                 sysctls: dict[str, str] | None = None) -> None:
        self.cri, self.pb, self.handler = cri, cri.pb, handler
        self.uid = uuid.uuid4().hex[:12]
        self.log_dir = os.path.join(cri.daemon.base, "logs", f"default_{name}_{self.uid}")
        os.makedirs(self.log_dir)
        pb = self.pb
        self.config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=self.uid, namespace="default"),
            hostname=name, log_directory=self.log_dir,
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"/{cri.daemon.cgroup_parent}/pod{self.uid}",
                security_context=pb.LinuxSandboxSecurityContext(privileged=privileged),
                sysctls=sysctls or {}))
        self.id = cri.runtime.RunPodSandbox(
            pb.RunPodSandboxRequest(config=self.config, runtime_handler=handler), timeout=60
        ).pod_sandbox_id
        cri.pods.append(self.id)

    def status(self, verbose: bool = False):
        return self.cri.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=self.id, verbose=verbose), timeout=30)

    def pid(self) -> int:
        """The sandbox (pause) process, from the verbose status."""
        return json.loads(self.status(verbose=True).info["info"])["pid"]

    def create(self, name: str, command: list[str], *, mounts=(), resources=None,
               **security) -> str:
        """PullImage, then CreateContainer; security: LinuxContainerSecurityContext fields,
        resources: a LinuxContainerResources."""
        pb = self.pb
        self.cri.images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=IMAGE),
                                                      sandbox_config=self.config), timeout=60)
        # The kubelet's default for pods: a PID namespace per container.
        security.setdefault("namespace_options", pb.NamespaceOption(pid=pb.CONTAINER))
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=IMAGE),
            command=command, log_path=f"{name}/0.log", mounts=list(mounts),
            linux=pb.LinuxContainerConfig(
                resources=resources,
                security_context=pb.LinuxContainerSecurityContext(**security)))
        return self.cri.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=config, sandbox_config=self.config),
            timeout=60).container_id

    def start(self, cid: str) -> None:
        self.cri.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid),
                                        timeout=60)

    def run(self, name: str, command: list[str], **kw) -> str:
        cid = self.create(name, command, **kw)
        self.start(cid)
        return cid

    def container_status(self, cid: str, verbose: bool = False):
        return self.cri.runtime.ContainerStatus(
            self.pb.ContainerStatusRequest(container_id=cid, verbose=verbose), timeout=30)

    def container_pid(self, cid: str) -> int:
        return json.loads(self.container_status(cid, verbose=True).info["info"])["pid"]

    def wait_exited(self, cid: str):
        """The container's status once it has exited (None if it has not within 20 s)."""
        exited = self.pb.CONTAINER_EXITED
        return wait_until(lambda: (s := self.container_status(cid).status).state == exited
                          and s, timeout=20)

    def exec_sync(self, cid: str, cmd: list[str], timeout: int = 20):
        return self.cri.runtime.ExecSync(
            self.pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout),
            timeout=timeout + 10)

    def exec_url(self, cid: str, cmd: list[str], tty: bool = False) -> str:
        """A streaming exec. With a terminal: stdin too, as `kubectl exec -it` (containerd 1.6
        passes no terminal output without it), and no stderr (the CRI refuses both)."""
        return self.cri.runtime.Exec(self.pb.ExecRequest(
            container_id=cid, cmd=cmd, tty=tty, stdin=tty, stdout=True, stderr=not tty),
            timeout=30).url

    def update_resources(self, cid: str, resources) -> None:
        self.cri.runtime.UpdateContainerResources(self.pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=resources), timeout=60)

    def stop_container(self, cid: str, timeout: int) -> None:
        self.cri.runtime.StopContainer(
            self.pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=timeout + 30)

    def remove_container(self, cid: str) -> None:
        self.cri.runtime.RemoveContainer(self.pb.RemoveContainerRequest(container_id=cid),
                                         timeout=60)

    def log(self, name: str) -> list[tuple[str, str, str]]:
        """The CRI log file's lines as (stream, tag, text): `TIMESTAMP STREAM TAG TEXT`."""
        text = Path(self.log_dir, name, "0.log").read_text()
        return [tuple(line.split(" ", 3)[1:]) for line in text.splitlines()]

    def stop(self) -> None:
        self.cri.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=self.id),
                                        timeout=60)

    def remove(self) -> None:
        self.cri.runtime.RemovePodSandbox(
            self.pb.RemovePodSandboxRequest(pod_sandbox_id=self.id), timeout=60)
        self.cri.pods.remove(self.id)


def runtime_state(base: str, handler: str, cid: str) -> dict | None:
    """The handler's runtime's own view of a container (`state`, in the root the shim gives
    it: the handler's Root plus containerd's namespace), None once it is gone."""
    p = run([runtimes()[handler], "--root", os.path.join(base, f"{handler}-root", "k8s.io"),
             "state", cid])
    return json.loads(p.stdout) if p.returncode == 0 else None
