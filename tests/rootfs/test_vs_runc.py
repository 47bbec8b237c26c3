"""The mount table of a default `runc spec` container: ocirt against the installed runc.

Same destinations, same filesystem types and sources, same per-mount options, except for the
differences ocirt makes on purpose (listed in DIFFERENCES)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

import rootfs_harness as harness
from ocirt.rootfs import setup

RUNC = shutil.which("runc")

# destination -> (what runc 1.1.5 shows, what ocirt shows), for the per-mount options.
DIFFERENCES = {
    # runc leaves the tmpfs under the cgroup binds writable although the mount says ro.
    "/sys/fs/cgroup": ("rw,nosuid,nodev,noexec,relatime", "ro,nosuid,nodev,noexec,relatime"),
    # readonlyPaths: runc 1.1.5 remounts ro only; ocirt also sets nosuid,nodev,noexec.
    **{p: ("ro,relatime", "ro,nosuid,nodev,noexec,relatime")
       for p in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys")},
}
ONLY_OCIRT = {"/sys/fs/cgroup/unified"}  # runc 1.1 does not provide the hybrid cgroup2 tree


def table(text: str) -> dict[str, tuple[str, str, str]]:
    out = {}
    for line in text.splitlines():
        if " - " not in line:
            continue
        pre, post = line.split(" - ", 1)
        f, p = pre.split(), post.split()
        out[f[4]] = (f[5], p[0], p[1])
    return out


def runc_mountinfo(bundle: harness.Bundle) -> str:
    cfg = harness.runc_spec_config()
    cfg["process"] = {"terminal": False, "user": {"uid": 0, "gid": 0}, "cwd": "/",
                      "env": ["PATH=/bin"], "args": ["cat", "/proc/self/mountinfo"]}
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        json.dump(cfg, f)
    state = tempfile.mkdtemp(prefix="ocirt-runc-state-")
    try:
        p = subprocess.run([RUNC, "--root", state, "run", f"ocirt-cmp-{uuid.uuid4().hex[:8]}"],
                           cwd=bundle.path, capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout.decode()
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.mark.skipif(RUNC is None, reason="runc not installed")
def test_default_spec_mount_table_matches_runc(bundle):
    theirs = table(runc_mountinfo(bundle))
    plan = setup.plan(harness.runc_spec_config(), "rootfs", bundle.path)
    res = harness.run(plan, script="cat /proc/self/mountinfo")
    assert res.error is None, res.error
    ours = table(res.output)
    assert set(ours) - set(theirs) == ONLY_OCIRT
    assert set(theirs) - set(ours) == set()
    for dest, (opts, fstype, source) in theirs.items():
        o_opts, o_fstype, o_source = ours[dest]
        assert (o_fstype, o_source) == (fstype, source), dest
        if dest in DIFFERENCES:
            assert (opts, o_opts) == DIFFERENCES[dest], dest
        else:
            assert o_opts == opts, dest
