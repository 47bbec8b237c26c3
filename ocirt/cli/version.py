"""`ocirt --version`: runc's lines (go-runc's parseVersion reads `commit: ` and `spec: `), with
ocirt's own first line and the interpreter in place of Go."""

from __future__ import annotations

import os
import sys


def text() -> str:
    """Everything after "ocirt version " (urfave/cli prints the program's name first)."""
    from ocirt import OCI_VERSION, __version__
    from ocirt.features import libseccomp_version
    v = sys.version_info
    lines = [__version__, f"commit: {commit() or 'unknown'}", f"spec: {OCI_VERSION}",
             f"python: {v.major}.{v.minor}.{v.micro}"]
    seccomp = libseccomp_version()
    if seccomp:
        lines.append(f"libseccomp: {seccomp}")
    return "\n".join(lines) + "\n"


def commit() -> str | None:
    """The commit of the checkout ocirt runs from, read from its .git without running git
    (a worktree's .git is a file naming its git directory)."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    gitdir = os.path.join(top, ".git")
    try:
        if os.path.isfile(gitdir):
            with open(gitdir) as f:
                gitdir = os.path.join(top, f.read().strip().removeprefix("gitdir: "))
        with open(os.path.join(gitdir, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        common = gitdir
        if os.path.isfile(os.path.join(gitdir, "commondir")):
            with open(os.path.join(gitdir, "commondir")) as f:
                common = os.path.join(gitdir, f.read().strip())
        for d in (gitdir, common):
            try:
                with open(os.path.join(d, ref)) as f:
                    return f.read().strip()
            except FileNotFoundError:
                pass
        with open(os.path.join(common, "packed-refs")) as f:
            for line in f:
                sha, _, name = line.strip().partition(" ")
                if name == ref:
                    return sha
    except OSError:
        pass
    return None
