"""checkpoint: runc's flags, defaults and checks; the dump itself is ocirt.lifecycle.checkpoint."""

from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args

FLAGS = [
    Flag("image-path", "str", "", help="path for saving criu image files"),
    Flag("work-path", "str", "", help="path for saving work files and logs"),
    Flag("parent-path", "str", "", help="path for previous criu image files in pre-dump"),
    Flag("leave-running", "bool", False, help="leave the process running after checkpointing"),
    Flag("tcp-established", "bool", False, help="allow open tcp connections"),
    Flag("ext-unix-sk", "bool", False, help="allow external unix sockets"),
    Flag("shell-job", "bool", False, help="allow shell jobs"),
    Flag("lazy-pages", "bool", False, help="use userfaultfd to lazily restore memory pages"),
    Flag("status-fd", "int", -1, help="criu writes \\0 to this FD once lazy-pages is ready"),
    Flag("page-server", "str", "", help="ADDRESS:PORT of the page server"),
    Flag("file-locks", "bool", False, help="handle file locks, for safety"),
    Flag("pre-dump", "bool", False, help="dump container's memory information only, leave the container running after this"),
    Flag("manage-cgroups-mode", "str", "", help="cgroups mode: 'soft' (default), 'full' and 'strict'"),
    Flag("empty-ns", "list", [], help="create a namespace, but don't restore its properties"),
    Flag("auto-dedup", "bool", False, help="enable auto deduplication of memory images"),
    common.HELP,
]


def run(ctx, parsed) -> int:
    need_args(parsed, ctx.command, exact=1)
    from ocirt.lifecycle.checkpoint import check_status, checkpoint
    from ocirt.lifecycle.container import Container
    store = common.store(ctx)
    c = Container.load(store, parsed.args[0])   # runc's order: the container, its status,
    check_status(c)                             # then the options
    from ocirt.criu import options
    checkpoint(store, c, options.from_flags(parsed), ctx.criu)
    return 0
