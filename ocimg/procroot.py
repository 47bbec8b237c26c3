"""Which processes run inside a bundle's rootfs: those whose root directory is it.

Any runtime (ocirt, runc, crun) pivots a container's processes into the rootfs, so their
/proc/PID/root is the rootfs directory itself: the same inode on the same filesystem (an
overlay's bind mounts share its superblock). That needs no knowledge of each runtime's state
directory, and also sees a created but not yet started container, whose init is already there.
"""

from __future__ import annotations

import os


def processes_rooted_at(rootfs: str) -> list[int]:
    try:
        st = os.stat(rootfs)
    except FileNotFoundError:
        return []
    want = (st.st_dev, st.st_ino)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            proc_root = os.stat(f"/proc/{name}/root")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        if (proc_root.st_dev, proc_root.st_ino) == want:
            found.append(int(name))
    return sorted(found)
