"""Command-line entry: global flags, the verb table, and the ONE place where errors become a
message, a log line and an exit code. Verb modules are imported only when called."""

from __future__ import annotations

import sys
from ocirt.cli import flags as fl
from ocirt.errors import OcirtError, UsageError
from ocirt.log import logger

DEFAULT_ROOT = "/run/ocirt"

GLOBAL_FLAGS = [
    fl.Flag("root", "str", DEFAULT_ROOT, help="root directory for storage of container state"),
    fl.Flag("log", "str", "", help="set the log file to write ocirt logs to (default is stderr)"),
    fl.Flag("log-format", "str", "text", help="set the log format ('text' (default), or 'json')"),
    fl.Flag("debug", "bool", False, help="enable debug logging"),
    fl.Flag("systemd-cgroup", "bool", False,
            help="enable systemd cgroup support (cgroupsPath as slice:prefix:name)"),
    fl.Flag("rootless", "str", "auto", help="ignore cgroup permission errors ('true', 'false', or 'auto')"),
    fl.Flag("criu", "str", "criu", help="accepted for runc compatibility; unused", hidden=True),
    fl.Flag("cgroup-manager", "str", "", help="crun compatibility: cgroupfs, systemd or disabled",
            hidden=True),
    fl.Flag("help", "bool", False, aliases=("h",), help="show help"),
    fl.Flag("version", "bool", False, aliases=("v",), help="print the version"),
]

# verb -> (module under ocirt.cli, one-line description)
VERBS: dict[str, tuple[str, str]] = {
    "create": ("create", "create a container"),
    "start": ("start", "executes the user defined process in a created container"),
    "run": ("run", "create and run a container"),
    "state": ("state", "output the state of a container"),
    "kill": ("kill", "kill sends the specified signal (default: SIGTERM) to the container's init process"),
    "delete": ("delete", "delete any resources held by the container often used with detached container"),
    "list": ("list", "lists containers started by ocirt with the given root"),
    "exec": ("exec", "execute new process inside the container"),
    "ps": ("ps", "ps displays the processes running inside a container"),
    "pause": ("pause", "pause suspends all processes inside the container"),
    "resume": ("pause", "resumes all processes that have been previously paused"),
    "events": ("events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics"),
    "update": ("update", "update container resource constraints"),
    "spec": ("spec", "create a new specification file"),
    "features": ("features", "show the enabled features"),
}


# Verbs that move a process into a cgroup: they start the kernel's grace period early.
_PLACES_PROCESSES = ("create", "run", "exec")


class Context:
    """The global flags, as every verb sees them."""

    def __init__(self, root: str, systemd_cgroup: bool, rootless: str, cgroup_manager: str,
                 debug: bool, command: str = "") -> None:
        self.root = root
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless
        self.cgroup_manager = cgroup_manager
        self.debug = debug
        self.command = command


def _version() -> str:
    from ocirt import OCI_VERSION, __version__
    v = sys.version_info
    return (f"ocirt version {__version__}\n"
            f"spec: {OCI_VERSION}\n"
            f"python: {v.major}.{v.minor}.{v.micro}\n")


def _usage() -> str:
    lines = ["usage: ocirt [global options] command [command options] [arguments...]", "",
             "commands:"]
    for name, (_, desc) in VERBS.items():
        lines.append(f"   {name:<10} {desc}")
    lines += ["", "global options:"]
    for f in GLOBAL_FLAGS:
        if not f.hidden:
            lines.append(f"   --{f.name:<16} {f.help}")
    return "\n".join(lines) + "\n"


def command_usage(verb: str, module) -> str:
    lines = [f"usage: ocirt {verb} [command options] {getattr(module, 'USAGE', '')}", ""]
    for f in getattr(module, "FLAGS", []):
        if f.hidden:
            continue
        names = ", ".join(["--" + f.name] + ["-" + a for a in f.aliases])
        lines.append(f"   {names:<26} {f.help}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    try:
        g = fl.parse(argv, GLOBAL_FLAGS, "")
    except UsageError as e:
        sys.stderr.write(f"ocirt: {e}\n")
        return 1
    fmt = g["log-format"]
    if fmt not in ("text", "json"):
        sys.stderr.write(f"ocirt: invalid log-format: {fmt}\n")
        return 1
    logger.configure(g["log"], fmt, g["debug"])
    if g["version"]:
        sys.stdout.write(_version())
        return 0
    if not g.args or g["help"]:
        sys.stdout.write(_usage())
        return 0 if g["help"] else 1
    verb, rest = g.args[0], g.args[1:]
    entry = VERBS.get(verb)
    if entry is None:
        logger.fatal(f"No help topic for '{verb}'")
        return 1
    ctx = Context(root=g["root"], systemd_cgroup=g["systemd-cgroup"], rootless=g["rootless"],
                  cgroup_manager=g["cgroup-manager"], debug=g["debug"], command=verb)
    if g["cgroup-manager"] == "systemd":
        ctx.systemd_cgroup = True
    if verb in _PLACES_PROCESSES:
        from ocirt.cgroups import warmup
        warmup.start()
    try:
        name = f"ocirt.cli.{entry[0]}"
        __import__(name)            # importlib itself would cost an import (and warnings)
        module = sys.modules[name]
        parsed = fl.parse(rest, module.FLAGS, verb)
        if parsed.get("help"):
            sys.stdout.write(command_usage(verb, module))
            return 0
        return module.run(ctx, parsed) or 0
    except OcirtError as e:
        logger.fatal(e.message)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        logger.fatal(_os_message(e))
        return 1
    except Exception as e:  # noqa: BLE001 - a bug, but managers still need their one error line
        if g["debug"]:
            import traceback
            traceback.print_exc()
        logger.fatal(f"internal error: {type(e).__name__}: {e}")
        return 1


def _os_message(e: OSError) -> str:
    text = e.strerror or str(e)
    if e.filename is not None and str(e.filename) not in text:
        return f"{e.filename}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
