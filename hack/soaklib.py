"""Soak runs of ocirt: lifecycle cycles (create, start, wait, delete) and execs into one
container, with what they could leak counted before and after (psutil): fds, threads and
zombies of the caller's process tree and of the container, mounts on the host and in the
container, cgroup directories, state directories and the container's /dev/pts. Shared by
hack/soak (1,000 cycles, figures printed) and tests/integration/test_soak.py."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil

CGROUP_ROOT = Path("/sys/fs/cgroup")


class Soak:
    def __init__(self, ocirt, bundle: str, rootfs: str, prefix: str) -> None:
        self.ocirt = ocirt              # tests/conftest.py's Runner, on its own state root
        self.root = str(ocirt.root)
        self.bundle = bundle            # its process: `true`
        self.rootfs = rootfs
        self.prefix = prefix            # every container id starts with it

    def call(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return self.ocirt(*args, check=check, stdin=subprocess.DEVNULL, timeout=120, **kw)

    def status(self, cid: str) -> str:
        import json
        return json.loads(self.call("state", cid).stdout)["status"]

    # --- cycles ---------------------------------------------------------------------------

    def lifecycle(self, n: int) -> None:
        """create, start, wait for the process (`true`) to end, delete; n times."""
        for i in range(n):
            cid = f"{self.prefix}-life-{i}"
            self.call("create", "--bundle", self.bundle, cid)
            self.call("start", cid)
            while self.status(cid) != "stopped":
                time.sleep(0.005)
            self.call("delete", cid)

    def execs(self, cid: str, n: int) -> None:
        """Into one running container, n times: a plain exec, one passed an fd
        (--preserve-fds), one with a terminal and one that forks children of its own. (Not
        --detach: its process is reparented to the container's init, whose job reaping it
        is, as with runc.)"""
        for _ in range(n):
            self.call("exec", cid, "true")
            r, w = os.pipe()
            try:
                self.call("exec", "--preserve-fds", "1", cid, "sh", "-c", "echo fd >&3",
                          pass_fds=(3,), preexec_fn=lambda w=w: os.dup2(w, 3))
                os.close(w)
                w = -1
                assert os.read(r, 16) == b"fd\n"
            finally:
                os.close(r)
                if w >= 0:
                    os.close(w)
            self.call("exec", "-t", cid, "tty")
            self.call("exec", cid, "sh", "-c", "sleep 0.01 & sleep 0.01 & wait")

    # --- counting -------------------------------------------------------------------------

    def counts(self, container: str | None = None) -> dict[str, int]:
        """What a leak would grow. `container`: a running container whose processes,
        mounts and ptys are counted too."""
        me = psutil.Process()
        tree = [me] + me.children(recursive=True)
        c: dict[str, int] = {
            "caller fds": me.num_fds(),
            "caller tree processes": len(tree) - 1,
            "caller tree threads": sum(_safe(p.num_threads) for p in tree),
            "caller tree zombies": sum(_safe(p.status) == psutil.STATUS_ZOMBIE for p in tree),
            "state dirs": len([n for n in os.listdir(self.root) if not n.startswith("~")]),
            "cgroup dirs": self._cgroup_dirs(),
            "host mounts under the rootfs": _mounts_under(self.rootfs),
            "ocirt processes": len(_procs_with(self.root)),
        }
        if container is not None:
            init = self._init(container)
            procs = _container_procs(init)
            c.update({
                "container processes": len(procs),
                "container zombies": sum(_safe(p.status) == psutil.STATUS_ZOMBIE
                                         for p in procs),
                "container threads": sum(_safe(p.num_threads) for p in procs),
                "container fds": sum(_safe(p.num_fds) for p in procs),
                "container mounts": len(Path(f"/proc/{init}/mountinfo").read_text()
                                        .splitlines()),
                "container /dev/pts": len(os.listdir(f"/proc/{init}/root/dev/pts")),
            })
        return c

    def _init(self, cid: str) -> int:
        import json
        return json.loads(self.call("state", cid).stdout)["pid"]

    def _cgroup_dirs(self) -> int:
        n = 0
        for top in CGROUP_ROOT.iterdir():
            parent = top / "ocirt"
            if parent.is_dir():
                n += sum(1 for d in parent.iterdir() if d.name.startswith(self.prefix))
        return n


def sleeper_bundle(bundle: str, work: str) -> str:
    """A bundle next to `bundle` (same rootfs) whose process sleeps: the exec target."""
    import json
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = os.path.join(bundle, cfg["root"]["path"])
    cfg["process"]["args"] = ["sleep", "1000000"]
    sleeper = os.path.join(work, "sleeper")
    os.makedirs(sleeper, exist_ok=True)
    with open(os.path.join(sleeper, "config.json"), "w") as f:
        json.dump(cfg, f)
    return sleeper


def _safe(f):
    try:
        return f()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def _procs_with(marker: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or ()):
            out.append(p)
    return out


def _container_procs(init: int) -> list[psutil.Process]:
    """The init and everything in its pid namespace (its descendants, reparented or not)."""
    ns = os.readlink(f"/proc/{init}/ns/pid")
    out = []
    for p in psutil.process_iter():
        try:
            if os.readlink(f"/proc/{p.pid}/ns/pid") == ns:
                out.append(p)
        except OSError:
            continue
    return out


def _mounts_under(path: str) -> int:
    prefix = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split()[4].startswith(prefix))


def growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before if after.get(k, 0) != before[k]}

