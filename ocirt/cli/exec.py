from __future__ import annotations

from ocirt.cli import common
from ocirt.cli.flags import Flag, need_args
from ocirt.errors import ExecFailed, OcirtError, UsageError
from ocirt.jsonio import dumps, loads

FLAGS = [
    Flag("console-socket", "str", "", help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Flag("pidfd-socket", "str", "", help="path to an AF_UNIX socket which will receive the pidfd of the process"),
    Flag("cwd", "str", "", help="current working directory in the container"),
    Flag("env", "list", [], aliases=("e",), help="set environment variables"),
    Flag("tty", "bool", False, aliases=("t",), help="allocate a pseudo-TTY"),
    Flag("user", "str", "", aliases=("u",), help="UID (format: <uid>[:<gid>])"),
    Flag("additional-gids", "intlist", [], aliases=("g",), help="additional gids"),
    Flag("process", "str", "", aliases=("p",), help="path to the process.json"),
    Flag("detach", "bool", False, aliases=("d",), help="detach from the container's process"),
    Flag("pid-file", "str", "", help="specify the file to write the process id to"),
    Flag("process-label", "str", "", help="set the asm process label for the process commonly used with selinux"),
    Flag("apparmor", "str", "", help="set the apparmor profile for the process"),
    Flag("no-new-privs", "bool", False, help="set the no new privileges value for the process"),
    Flag("cap", "list", [], aliases=("c",), help="add a capability to the bounding set for the process"),
    Flag("preserve-fds", "int", 0, help="pass N additional file descriptors to the container"),
    Flag("cgroup", "list", [], help="run the process in an (existing) sub-cgroup(s)"),
    Flag("ignore-paused", "bool", False, help="allow exec in a paused container"),
    common.HELP,
]


def run(ctx, parsed) -> int:
    need_args(parsed, "exec", minimum=1)
    # Past the argument count, every failure before the process runs is runc's "exec failed"
    # with status 255, so a caller can tell it from the process's own exit status.
    try:
        return _run(ctx, parsed)
    except ExecFailed:
        raise
    except OcirtError as e:
        raise ExecFailed(f"exec failed: {e.message}") from None
    except OSError as e:
        from ocirt.cli.main import os_message
        raise ExecFailed(f"exec failed: {os_message(e)}") from None


def _run(ctx, parsed) -> int:
    cid = parsed.args[0]
    from ocirt.lifecycle.container import Container
    from ocirt.lifecycle.exec import ExecOptions, execute
    store = common.store(ctx)
    if parsed["process"]:
        from ocirt.config.load import load_process
        process = load_process(parsed["process"])
    else:
        container = Container.load(store, cid)
        if len(parsed.args) < 2:
            raise OcirtError("process args cannot be empty")
        process = build_process(container.config.get("process") or {}, parsed)
    opts = ExecOptions(process, detach=parsed["detach"], pid_file=parsed["pid-file"],
                       console_socket=parsed["console-socket"],
                       preserve_fds=parsed["preserve-fds"], cgroup=parsed["cgroup"],
                       ignore_paused=parsed["ignore-paused"],
                       pidfd_socket=parsed["pidfd-socket"])
    return execute(store, cid, opts)


def build_process(base: dict, parsed) -> dict:
    """config.json's process with the command line's overrides, as runc builds it."""
    p = loads(dumps(base))      # a deep copy of plain JSON data (copy costs an import)
    p["args"] = parsed.args[1:]
    p["terminal"] = parsed["tty"]
    if parsed["cwd"]:
        p["cwd"] = parsed["cwd"]
    p.setdefault("cwd", "/")
    if parsed["env"]:
        p["env"] = list(p.get("env") or []) + parsed["env"]
    if parsed["user"]:
        # runc: the uid replaces the config's, the gid only when given.
        uid, sep, gid = parsed["user"].partition(":")
        user = p.setdefault("user", {"uid": 0, "gid": 0})
        try:
            user["uid"] = int(uid)
            if sep:
                user["gid"] = int(gid)
        except ValueError:
            raise UsageError(f"--user {parsed['user']}: not <uid>[:<gid>]") from None
    if parsed["additional-gids"]:
        p.setdefault("user", {"uid": 0, "gid": 0})["additionalGids"] = parsed["additional-gids"]
    if parsed["cap"]:
        caps = p.setdefault("capabilities", {})
        # Never the inheritable set (CVE-2022-29162); ambient only if the spec already uses
        # inheritable capabilities.
        for s in ("bounding", "effective", "permitted"):
            caps[s] = list(caps.get(s) or []) + [c for c in parsed["cap"] if c not in (caps.get(s) or [])]
        if caps.get("inheritable"):
            caps["ambient"] = list(caps.get("ambient") or []) + parsed["cap"]
    if parsed["no-new-privs"]:
        p["noNewPrivileges"] = True
    if parsed["apparmor"]:
        p["apparmorProfile"] = parsed["apparmor"]
    if parsed["process-label"]:
        p["selinuxLabel"] = parsed["process-label"]
    return p
