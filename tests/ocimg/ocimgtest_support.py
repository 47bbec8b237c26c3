"""Helpers shared by the ocimg tests and their conftest (a module of its own: `conftest` is
ambiguous when several test directories have one)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import ocimgtest_images as ti

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "tester", "s3cret-pw"


def mounts_under(path: str) -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                out.append(mp)
    return out


def unmount_all_under(path: str) -> None:
    for mp in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], check=False, capture_output=True)


def skopeo_push(session_dir: Path, img: ti.Image, host: str, dest: str, flags: list[str],
                extra: tuple[str, ...] = ()) -> None:
    layout = tempfile.mkdtemp(dir=session_dir, prefix="layout-")
    ti.write_layout(layout, {"img": img})
    subprocess.run(["skopeo", "copy", "--quiet", *extra, *flags, f"oci:{layout}:img", f"docker://{host}/{dest}"],
                   check=True, capture_output=True, timeout=120)
