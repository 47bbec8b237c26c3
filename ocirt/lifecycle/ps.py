"""ps: the container's processes (host pids of its cgroup), as runc's ps.go lists them.

The table comes from the host's ps(1), filtered to the container's pids by the PID column
found in the header, exactly as runc does. ps(1) rather than psutil: users pass arbitrary ps
options (`ocirt ps ID -o pid,stat,comm`, `aux`...), which only ps itself can honour, and the
launcher then needs no site-packages at all.
"""

from __future__ import annotations

import subprocess

from ocirt.errors import OcirtError
from ocirt.lifecycle.container import Container
from ocirt.linux import signals
from ocirt.state.store import Store


def pids(store: Store, cid: str) -> list[int]:
    c = Container.load(store, cid)
    cg = c.cgroup()
    return cg.listed_pids() if cg is not None else []


def table(wanted: list[int], ps_args: list[str]) -> str:
    try:
        p = subprocess.run(["ps", *(ps_args or ["-ef"])], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, check=False,
                           preexec_fn=signals.reset_for_exec)
    except OSError as e:
        raise OcirtError(f"ps: {e.strerror}") from None
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        raise OcirtError(f"exit status {p.returncode}: {out}")
    lines = out.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise OcirtError("couldn't find PID field in ps output")
    col = header.index("PID")
    keep = set(wanted)
    rows = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        try:
            pid = int(fields[col])
        except (IndexError, ValueError):
            raise OcirtError(f"unable to parse pid: {line!r}") from None
        if pid in keep:
            rows.append(line)
    return "\n".join(rows) + "\n"
