"""Helpers for the runtime's tests (a module of its own: `conftest` is ambiguous when several
test directories have one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def run_out(ocirt, bundle, cid: str, script: str) -> str:
    """`run` a shell script in the bundle; its stdout (the run must succeed)."""
    bundle.sh(script)
    p = ocirt("run", "--bundle", str(bundle.path), cid)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


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
