"""restore: runc's flags, defaults and checks; the restore itself is ocirt.lifecycle.restore."""

from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args

FLAGS = [
    Flag("console-socket", "str", "", help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Flag("image-path", "str", "", help="path to criu image files for restoring"),
    Flag("work-path", "str", "", help="path for saving work files and logs"),
    Flag("tcp-established", "bool", False, help="allow open tcp connections"),
    Flag("ext-unix-sk", "bool", False, help="allow external unix sockets"),
    Flag("shell-job", "bool", False, help="allow shell jobs"),
    Flag("file-locks", "bool", False, help="handle file locks, for safety"),
    Flag("manage-cgroups-mode", "str", "", help="cgroups mode: 'soft' (default), 'full' and 'strict'"),
    Flag("bundle", "str", "", aliases=("b",), help="path to the root of the bundle directory"),
    Flag("detach", "bool", False, aliases=("d",), help="detach from the container's process"),
    Flag("pid-file", "str", "", help="specify the file to write the process id to"),
    Flag("no-subreaper", "bool", False, help="disable the use of the subreaper used to reap reparented processes"),
    Flag("no-pivot", "bool", False, help="do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    Flag("empty-ns", "list", [], help="create a namespace, but don't restore its properties"),
    Flag("auto-dedup", "bool", False, help="enable auto deduplication of memory images"),
    Flag("lazy-pages", "bool", False, help="use userfaultfd to lazily restore memory pages"),
    Flag("lsm-profile", "str", "", help="Specify an LSM profile to be used during restore in the form of TYPE:NAME."),
    Flag("lsm-mount-context", "str", "", help="Specify an LSM mount context to be used during restore."),
    common.HELP,
]


def run(ctx, parsed) -> int:
    need_args(parsed, "restore", exact=1)
    from ocirt.criu import options
    o = options.from_flags(parsed)      # runc's order: the image paths first
    from ocirt.lifecycle.restore import restore
    from ocirt.lifecycle.create import Options
    from ocirt.rootless import is_rootless
    opts = Options(bundle=parsed["bundle"] or ".", pid_file=parsed["pid-file"],
                   console_socket=parsed["console-socket"], no_pivot=parsed["no-pivot"],
                   systemd_cgroup=ctx.systemd_cgroup, rootless=is_rootless(ctx.rootless),
                   cgroups_disabled=ctx.cgroup_manager == "disabled")
    return restore(common.store(ctx), parsed.args[0], opts, o, ctx.criu, parsed["detach"])
