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
    fl.Flag("log", "str", "", help="set the log file to write ocirt logs to (default is '/dev/stderr')"),
    fl.Flag("log-format", "str", "text", help="set the log format ('text' (default), or 'json')"),
    fl.Flag("debug", "bool", False, help="enable debug logging"),
    fl.Flag("systemd-cgroup", "bool", False,
            help="enable systemd cgroup support (cgroupsPath as slice:prefix:name)"),
    fl.Flag("rootless", "str", "auto", help="ignore cgroup permission errors ('true', 'false', or 'auto')"),
    fl.Flag("criu", "str", "criu", help="path to the criu binary used for checkpoint and restore"),
    fl.Flag("cgroup-manager", "str", "", help="crun compatibility: cgroupfs, systemd or disabled",
            hidden=True),
    fl.Flag("help", "bool", False, aliases=("h",), help="show help"),
    fl.Flag("version", "bool", False, aliases=("v",), help="print the version"),
]

# verb -> (module under ocirt.cli, one-line description)
VERBS: dict[str, tuple[str, str]] = {
    "checkpoint": ("checkpoint", "checkpoint a running container"),
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
    "restore": ("restore", "restore a container from a previous checkpoint"),
    "resume": ("pause", "resumes all processes that have been previously paused"),
    "events": ("events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics"),
    "update": ("update", "update container resource constraints"),
    "spec": ("spec", "create a new specification file"),
    "features": ("features", "show the enabled features"),
    "validate": ("validate", "check a bundle and report every problem of its configuration"),
}


# Verbs that start processes a container can reach, and move them into a cgroup: they check
# the interpreter (exeseal) and start the kernel's grace period early.
_PLACES_PROCESSES = ("create", "run", "exec")
# Verbs whose trailing arguments belong to another program (runc's SkipArgReorder): their
# flags must come before the container id.
_KEEPS_ARG_ORDER = ("exec", "ps")


class Context:
    """The global flags, as every verb sees them."""

    @property
    def root(self) -> str:
        # Without --root: ocirt.rootless.default_root(), resolved on first use (`spec` and
        # `features` need no state root, nor XDG_RUNTIME_DIR).
        if not self._root:
            from ocirt.rootless import default_root
            self._root = default_root()
        return self._root

    def __init__(self, root: str, systemd_cgroup: bool, rootless: str, cgroup_manager: str,
                 debug: bool, command: str = "", criu: str = "criu") -> None:
        self._root = root
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless
        self.cgroup_manager = cgroup_manager
        self.debug = debug
        self.command = command
        self.criu = criu


def _app_help() -> str:
    from ocirt.cli import usage, version
    return usage.app_page(VERBS, GLOBAL_FLAGS, version.text())


def _command_help(verb: str, module) -> str:
    from ocirt.cli import usage
    return usage.command_page(verb, VERBS[verb][1], module.FLAGS)


def _module(verb: str):
    name = f"ocirt.cli.{VERBS[verb][0]}"
    __import__(name)            # importlib itself would cost an import (and warnings)
    return sys.modules[name]


def _no_topic(topic: str) -> int:
    """urfave/cli's answer to an unknown command (or help topic): exit status 3."""
    logger.fatal(f"No help topic for '{topic}'")
    return 3


def _help_command(args: list[str]) -> int:
    """`ocirt help [command]` (or `h`)."""
    if not args:
        sys.stdout.write(_app_help())
        return 0
    if args[0] not in VERBS:
        return _no_topic(args[0])
    sys.stdout.write(_command_help(args[0], _module(args[0])))
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    try:
        g = fl.parse(argv, GLOBAL_FLAGS)
    except UsageError as e:
        sys.stdout.write(f"Incorrect Usage. {e}\n\n" + _app_help())
        logger.fatal(e.message)
        return 1
    if g["help"]:
        sys.stdout.write(_app_help())
        return 0
    if g["version"]:
        from ocirt.cli import version
        sys.stdout.write("ocirt version " + version.text())
        return 0
    fmt = g["log-format"]
    if fmt not in ("text", "json"):
        logger.fatal(f"invalid log-format: {fmt}")
        return 1
    try:
        logger.configure(g["log"], fmt, g["debug"])
    except OSError as e:
        logger.fatal(f"open {g['log']}: {(e.strerror or str(e)).lower()}")
        return 1
    if not g.args:
        sys.stdout.write(_app_help())
        return 0
    verb, rest = g.args[0], g.args[1:]
    if verb in ("help", "h"):
        return _help_command(rest)
    if verb not in VERBS:
        return _no_topic(verb)
    ctx = Context(root=g["root"] if "root" in g.given else "",
                  systemd_cgroup=g["systemd-cgroup"], rootless=g["rootless"],
                  cgroup_manager=g["cgroup-manager"], debug=g["debug"], command=verb,
                  criu=g["criu"])
    if g["cgroup-manager"] == "systemd":
        ctx.systemd_cgroup = True
    module = None
    try:
        if verb in _PLACES_PROCESSES:
            # CVE-2019-5736: nothing a container can reach may run on a writable interpreter;
            # this re-executes ocirt (no return) unless it runs on a sealed one already.
            from ocirt.spawn import exeseal
            exeseal.ensure_sealed(argv)
            from ocirt.cgroups import warmup
            warmup.start()
        module = _module(verb)
        parsed = fl.parse(rest, module.FLAGS, verb, reorder=verb not in _KEEPS_ARG_ORDER)
        if parsed.get("help"):
            sys.stdout.write(_command_help(verb, module))
            return 0
        return module.run(ctx, parsed) or 0
    except fl.FlagError as e:
        sys.stdout.write(f"Incorrect Usage: {e}\n\n" + _command_help(verb, module))
        logger.fatal(e.message)
        return 1
    except fl.ArgCountError as e:
        sys.stdout.write("Incorrect Usage.\n\n" + _command_help(verb, module))
        logger.fatal(e.message)
        return 1
    except OcirtError as e:
        logger.fatal(_failed(verb, e.message))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        logger.fatal(_failed(verb, os_message(e)))
        return 1
    except Exception as e:  # noqa: BLE001 - a bug, but managers still need their one error line
        if g["debug"]:
            import traceback
            traceback.print_exc()
        logger.fatal(_failed(verb, f"internal error: {type(e).__name__}: {e}"))
        return 1


def _failed(verb: str, message: str) -> str:
    """runc's words for a failed create or run ("runc create failed: ...")."""
    if verb in ("create", "run"):
        return f"ocirt {verb} failed: {message}"
    return message


def os_message(e: OSError) -> str:
    text = e.strerror or str(e)
    if e.filename is not None and str(e.filename) not in text:
        return f"{e.filename}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
