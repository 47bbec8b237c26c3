"""Helpers shared by the verb modules."""

from __future__ import annotations

from ocirt.cli.flags import Flag, Parsed
from ocirt.state.store import Store

# Every command has it (urfave/cli adds it); help pages do not list it.
HELP = Flag("help", "bool", False, aliases=("h",), help="show help", hidden=True)

CREATE_FLAGS = [
    Flag("bundle", "str", "", aliases=("b",), help="path to the root of the bundle directory, defaults to the current directory"),
    Flag("console-socket", "str", "", help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Flag("pidfd-socket", "str", "", help="path to an AF_UNIX socket which will receive the pidfd of the init process"),
    Flag("pid-file", "str", "", help="specify the file to write the process id to"),
    Flag("no-pivot", "bool", False, help="do not use pivot root to jail process inside rootfs"),
    Flag("no-new-keyring", "bool", False, help="do not create a new session keyring for the container"),
    Flag("preserve-fds", "int", 0, help="pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
    HELP,
]


def store(ctx) -> Store:
    return Store(ctx.root)


def create_options(ctx, parsed: Parsed):
    from ocirt.lifecycle.create import Options
    from ocirt.rootless import is_rootless
    return Options(bundle=parsed["bundle"] or ".", pid_file=parsed["pid-file"],
                   console_socket=parsed["console-socket"], no_pivot=parsed["no-pivot"],
                   no_new_keyring=parsed["no-new-keyring"], preserve_fds=parsed["preserve-fds"],
                   systemd_cgroup=ctx.systemd_cgroup, rootless=is_rootless(ctx.rootless),
                   cgroups_disabled=ctx.cgroup_manager == "disabled",
                   pidfd_socket=parsed["pidfd-socket"])
