"""Helpers for the runtime's tests (a module of its own: `conftest` is ambiguous when several
test directories have one)."""

from __future__ import annotations

import array
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OCIRT = os.environ.get("OCIRT_BIN", str(REPO / "hack" / "ocirt"))


class Runner:
    def __init__(self, root: Path, binary: str = OCIRT) -> None:
        self.root = root
        self.binary = binary

    def cmd(self, *args: str, global_args: tuple[str, ...] = ()) -> list[str]:
        return [self.binary, "--root", str(self.root), *global_args, *args]

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 60,
                 global_args: tuple[str, ...] = (), check: bool = False,
                 **kw) -> subprocess.CompletedProcess:
        # Files, not pipes: a created container inherits ocirt's stdio and keeps it open, so
        # waiting for EOF on a pipe would wait for the container to exit.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(self.cmd(*args, global_args=global_args), input=input,
                               stdout=out, stderr=err, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"ocirt {' '.join(args)} exited {p.returncode}: "
                                 f"{p.stderr.decode(errors='replace')}")
        return p

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self(*args, check=True, **kw)

    def state(self, cid: str) -> dict:
        return json.loads(self.ok("state", cid).stdout)

    def ids(self) -> list[str]:
        try:
            return [n for n in os.listdir(self.root) if not n.startswith((".", "~"))]
        except FileNotFoundError:
            return []


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict ("Name" -> "sleep", "CapEff" -> "00000000a80425fb", ...)."""
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f)}


def with_userns(bundle, host_id: int = 100000) -> None:
    """A user namespace mapping 65536 ids from `host_id` (with the reachable_rootfs fixture)."""
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": 65536}]


def run_out(ocirt, bundle, cid: str, script: str) -> str:
    """`run` a shell script in the bundle; its stdout (the run must succeed)."""
    bundle.sh(script)
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def ignore_and_block_signals() -> None:
    """preexec_fn for a runtime whose caller ignores and blocks signals (nohup, a script's
    background job, a supervisor with a mask). None of them is one that `run` and `exec`
    forward: those they catch, which execve resets anyway."""
    for s in (signal.SIGALRM, signal.SIGXCPU, signal.SIGTTOU, signal.SIGPIPE):
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGVTALRM, signal.SIGPROF})


def signal_masks(status: str) -> dict[str, str]:
    """SigBlk, SigIgn and SigCgt of a /proc/PID/status text."""
    return {k: v.strip() for k, _, v in (line.partition(":") for line in status.splitlines())
            if k in ("SigBlk", "SigIgn", "SigCgt")}


NO_SIGNAL_MASKS = {k: "0" * 16 for k in ("SigBlk", "SigIgn", "SigCgt")}


def host_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split(" - ")[0].split()[4] for line in f]


def cgroup_dirs_named(name: str) -> list[str]:
    found = []
    for top in Path("/sys/fs/cgroup").iterdir():
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(top):
            if os.path.basename(dirpath) == name:
                found.append(dirpath)
    return found


def pids_with_cmdline(marker: str) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{p}/cmdline").read_bytes():
                    out.append(int(p))
            except OSError:
                pass
    return out


def wait_until(cond, what: str, deadline: float = 30.0, step: float = 0.02) -> None:
    """Poll until cond() holds; a generous deadline only turns a hang into a failure."""
    import time
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"still waiting for {what} after {deadline:.0f} s")
        time.sleep(step)


def process_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat, None once it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()[0].decode()


def paused_at(ocirt, point: str, *args: str, **popen):
    """Start `ocirt ARGS` with OCIRT_TEST_PAUSE_AT=point and return it (a Popen) once it has
    stopped itself there."""
    import subprocess
    env = dict(os.environ, OCIRT_TEST_PAUSE_AT=point)
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen(ocirt.cmd(*args), env=env, **popen)
    wait_until(lambda: process_state(p.pid) == "T" or p.poll() is not None,
               f"ocirt {args[0]} to reach {point}")
    assert p.poll() is None, f"ocirt {args[0]} exited before {point}: {p.stderr.read()!r}"
    return p


def cgroup_mounts() -> tuple[dict[str, str], str | None]:
    """(v1 controller -> mount point, the cgroup2 mount point or None) of this host."""
    v1: dict[str, str] = {}
    unified = None
    with open("/proc/self/mounts") as f:
        for line in f:
            _, mnt, typ, opts = line.split()[:4]
            if typ == "cgroup2":
                unified = mnt
            elif typ == "cgroup":
                for o in opts.split(","):
                    v1.setdefault(o, mnt)
    return v1, unified


def cgroup_dirs(pid: int) -> dict[str, str]:
    """controller -> the process's cgroup directory ("" for the cgroup2 hierarchy)."""
    v1, unified = cgroup_mounts()
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if ctrls == "":
            if unified:
                out[""] = unified + path
            continue
        for c in ctrls.split(","):
            if c in v1:
                out[c] = v1[c] + path
    return out


def cgroup_dir(pid: int, controller: str) -> str:
    """The process's cgroup directory that holds `controller`'s files: its v1 hierarchy's,
    else the cgroup2 one (every controller on a pure v2 host)."""
    dirs = cgroup_dirs(pid)
    return dirs.get(controller) or dirs[""]


def pure_cgroup_v2() -> bool:
    """A host with only the cgroup2 hierarchy (no v1 controller mounted)."""
    v1, unified = cgroup_mounts()
    return unified is not None and not v1


def read_cgroup_file(d: str, name: str) -> str:
    return Path(d, name).read_text().strip()


def block_device() -> tuple[int, int] | None:
    """(major, minor) of a real disk of this machine, for blkio/io rules."""
    with open("/proc/partitions") as f:
        for line in f.read().splitlines()[2:]:
            parts = line.split()
            if len(parts) == 4 and not parts[3].startswith(("loop", "zram", "ram")):
                return int(parts[0]), int(parts[1])
    return None


def blkio_weight_file() -> str | None:
    """The v1 blkio weight file this kernel offers: BFQ's, or CFQ's on older kernels; None
    when no block device uses a proportional scheduler (mq-deadline, kyber, none)."""
    d = cgroup_mounts()[0].get("blkio")
    if d is None:
        return None
    for name in ("blkio.bfq.weight", "blkio.weight"):
        if os.path.exists(os.path.join(d, name)):
            return name
    return None


# --- one runtime binary, ocirt or runc, driven side by side -------------------------------

BINARIES = {"ocirt": OCIRT,
            "runc": shutil.which("runc")}


class RT:
    """One runtime binary with a private --root."""

    def __init__(self, name: str, binary: str, root: str) -> None:
        self.name = name
        self.binary = binary
        self.root = root

    def cmd(self, *args: str, log: str | None = None, global_args: tuple[str, ...] = ()
            ) -> list[str]:
        g = ["--root", self.root, *global_args]
        if log:
            g += ["--log", log, "--log-format", "json"]
        return [self.binary, *g, *args]

    def __call__(self, *args: str, log: str | None = None, timeout: float = 60,
                 env: dict | None = None, global_args: tuple[str, ...] = (),
                 **kw) -> subprocess.CompletedProcess:
        # Files, not pipes: a created container holds on to the runtime's stdio.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(self.cmd(*args, log=log, global_args=global_args), stdout=out,
                               stderr=err, timeout=timeout, env=env, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        return p

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        p = self(*args, **kw)
        assert p.returncode == 0, f"{self.name} {args} exited {p.returncode}: {p.stderr}"
        return p

    def state(self, cid: str) -> dict:
        return json.loads(self.ok("state", cid).stdout)


@pytest.fixture(params=["ocirt", "runc"])
def rt(request, tmp_path_factory):
    """Each runtime in turn (runc skipped when it is not installed); import it into a test
    module to use it. Tests parametrized indirectly with "ocirt-pip" get the `ocirt` of a pip
    install (tests/packaging)."""
    if request.param == "ocirt-pip":
        binary = request.getfixturevalue("pip_install").bin("ocirt")
    else:
        binary = BINARIES[request.param]
    if not binary:
        pytest.skip("runc is not installed")
    root = str(tmp_path_factory.mktemp(f"{request.param}-root"))
    r = RT(request.param, binary, root)
    yield r
    for cid in os.listdir(root):
        if not cid.startswith((".", "~")) and os.path.isdir(os.path.join(root, cid)):
            r("delete", "--force", cid)
    shutil.rmtree(root, ignore_errors=True)


def wait_for(pred, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while not (v := pred()) and time.monotonic() < end:
        time.sleep(0.02)
    return v


def wait_status(rt: RT, cid: str, want: str) -> dict:
    return wait_for(lambda: (st := rt.state(cid))["status"] == want and st) or rt.state(cid)


class ConsoleSocket:
    """A manager's --console-socket listener (conmon, go-runc): one SCM_RIGHTS fd, and a
    payload."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(30)

    def receive(self) -> tuple[bytes, list[int]]:
        conn, _ = self.sock.accept()
        with conn:
            fds = array.array("i")
            msg, anc, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, typ, data in anc:
                assert (level, typ) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        return msg, list(fds)

    def close(self) -> None:
        self.sock.close()


def read_until(fd: int, marker: bytes, timeout: float = 15) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


class PipInstall:
    """A wheel built from a checkout and installed with pip into a fresh venv of Debian's
    python3, the way a user installs ocirt without hack/install."""

    # What a source distribution of ocirt holds: the build sees nothing else of the checkout.
    SOURCES = ("ocirt", "ocimg", "specs", "setup.cfg", "pyproject.toml", "README.md")

    def __init__(self, wheel: Path, venv: Path) -> None:
        self.wheel = wheel
        self.venv = venv

    @classmethod
    def make(cls, repo: Path, work: Path) -> "PipInstall":
        # Built from a copy: a build writes build/ and *.egg-info next to its sources.
        src = work / "src"
        src.mkdir()
        for name in cls.SOURCES:
            if (repo / name).is_dir():
                shutil.copytree(repo / name, src / name, symlinks=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(repo / name, src / name)
        dist = work / "dist"
        # No build isolation and no dependencies: the build uses the test venv's setuptools
        # and needs no network.
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "--disable-pip-version-check", "-w", str(dist), str(src)])
        wheel = next(dist.glob("ocirt-*.whl"))
        venv = work / "venv"
        _run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)])
        # ocirt runs on the standard library alone; ocimg's commands that need urllib3,
        # zstandard or rich are not run from this venv.
        _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python3"), "install",
              "-q", "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)])
        return cls(wheel, venv)

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _run(cmd: list[str]) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
