"""Help pages in runc's layout (urfave/cli v1's templates: NAME, USAGE, DESCRIPTION, OPTIONS
for a command; NAME, USAGE, VERSION, COMMANDS, GLOBAL OPTIONS for the whole program).

Only `-h`, `help` and usage errors import this module, so its texts cost a plain call nothing.
"""

from __future__ import annotations

from ocirt.cli.flags import Flag

SUMMARY = """Open Container Initiative runtime

ocirt creates and runs containers from OCI bundles (a directory holding "config.json"
and a root filesystem), following the OCI runtime specification and runc's command line,
so container managers (podman through conmon, containerd's runc shim) can use it in runc's
place.

To start a new instance of a container:

    # ocirt run [ -b bundle ] <container-id>

"<container-id>" is a name for the instance of the container, unique on the host. The
bundle defaults to the current directory."""

# verb -> (arguments, description); the one-line summary lives in main.VERBS.
_ID = '"<container-id>" is the name of the container instance.'
PAGES: dict[str, tuple[str, str]] = {
    "checkpoint": ("<container-id>",
                   "The checkpoint command saves the state of the container instance: criu\n"
                   "dumps its processes into --image-path (default ./checkpoint); without\n"
                   "--leave-running they end and the container is deleted.\n" + _ID),
    "restore": ("<container-id>",
                "Restores the saved state of the container instance that was previously saved\n"
                "using the ocirt checkpoint command: a new container of the bundle's config\n"
                "whose processes criu brings back from --image-path.\n" + _ID),
    "create": ("<container-id>",
               "The create command creates an instance of a container for a bundle: its\n"
               "namespaces, mounts and cgroups are set up and its process waits, not yet\n"
               "running, until \"ocirt start\" is called.\n" + _ID),
    "start": ("<container-id>",
              "The start command runs the user defined process of a created container."),
    "run": ("<container-id>",
            "The run command creates an instance of a container for a bundle and starts its\n"
            "process; without --detach, ocirt waits for it and exits with its status.\n" + _ID),
    "state": ("<container-id>",
              "The state command prints the OCI state of a container as JSON."),
    "kill": ("<container-id> [signal]",
             "The kill command sends a signal (default: SIGTERM) to the container's init\n"
             "process, or with --all to every process of its cgroup. The signal is a name\n"
             "(KILL, SIGKILL, SIGRTMIN+3) or a number.\n\n"
             "       # ocirt kill ubuntu01 KILL"),
    "delete": ("<container-id>",
               "The delete command removes the resources held by a stopped (or, with --force,\n"
               "any) container.\n\n"
               "       # ocirt delete ubuntu01"),
    "list": ("",
             "The list command lists the containers under the state directory given by the\n"
             "global option \"--root\" (default: \"/run/ocirt\")."),
    "exec": ("<container-id> <command> [command options]  || -p process.json <container-id>",
             "The exec command runs a new process inside a running container. \"<command>\"\n"
             "and its arguments follow the container id; everything after them belongs to\n"
             "the command. \"<command>\" can only be left out when -p gives a process.json.\n\n"
             "       # ocirt exec <container-id> ps"),
    "ps": ("<container-id> [ps options]",
           "The ps command lists the container's processes: ps(1)'s table filtered to them,\n"
           "with the given ps options, or their host pids as JSON."),
    "pause": ("<container-id>",
              "The pause command freezes every process of the container."),
    "resume": ("<container-id>",
               "The resume command thaws every process of a paused container."),
    "events": ("<container-id>",
               "The events command prints the container's resource statistics as JSON, every\n"
               "--interval (default 5s) together with OOM events, or once with --stats."),
    "update": ("<container-id>",
               "The update command changes the container's cgroup limits, from flags or from\n"
               "a LinuxResources JSON document (--resources FILE, or - for standard input)."),
    "spec": ("",
             "The spec command writes a starter \"config.json\" into the bundle directory;\n"
             "edit it (args, mounts, namespaces) to fit the container."),
    "features": ("",
                 "The features command prints the OCI features document of this runtime, as\n"
                 "JSON."),
    "validate": ("",
                 "The validate command checks a bundle without creating anything and reports\n"
                 "every problem at once, one line each with the JSON path of the field: schema\n"
                 "violations of config.json, the rules a schema cannot express, fields ocirt does\n"
                 "not implement, a missing rootfs and a program not found in it. With --host it\n"
                 "also reports what this host cannot do for the config (cgroup controllers and\n"
                 "files, AppArmor/SELinux, namespaces, NUMA nodes, CPUs, network devices,\n"
                 "capabilities outside the bounding set). Exit status 1 when any problem is an\n"
                 "error; warnings do not fail.\n\n"
                 "       # ocirt validate --bundle /mycontainer --format json"),
}


def _tabulate(rows: list[tuple[str, str]], indent: str = "   ") -> list[str]:
    """Go's tabwriter as urfave/cli sets it up: the first column padded to its widest cell
    plus 2."""
    width = max(len(a) for a, _ in rows) + 2
    return [indent + a.ljust(width) + b for a, b in rows]


def _flag_row(f: Flag) -> tuple[str, str]:
    value = "" if f.kind == "bool" else " value"
    names = ", ".join(("-" if len(n) == 1 else "--") + n + value
                      for n in (f.name,) + tuple(f.aliases))
    text = f.help
    if f.kind == "int" or f.kind == "duration":
        d = f.default
        if f.kind == "duration":
            d = f"{d:g}s" if d is not None else None
        if d is not None:
            text += f" (default: {d})"
    elif f.kind == "str" and f.default:
        text += f' (default: "{f.default}")'
    return names, text


def command_page(verb: str, summary: str, flags: list[Flag]) -> str:
    args, description = PAGES.get(verb, ("", ""))
    visible = [f for f in flags if not f.hidden]
    usage = f"ocirt {verb}" + (" [command options]" if visible else "") + " " + (
        args or "[arguments...]")
    out = ["NAME:", f"   ocirt {verb} - {summary}", "", "USAGE:", "   " + usage]
    if description:
        out += ["", "DESCRIPTION:", "   " + description]
    text = "\n".join(out) + "\n"
    if visible:
        rows = _tabulate([_flag_row(f) for f in visible])
        text += "\nOPTIONS:\n" + "".join(line + "\n" for line in rows) + "   \n"
    return text


def app_page(verbs: dict[str, tuple[str, str]], flags: list[Flag], version: str) -> str:
    out = ["NAME:", "   ocirt - " + SUMMARY, "", "USAGE:",
           "   ocirt [global options] command [command options] [arguments...]", "",
           "VERSION:", "   " + version.rstrip("\n"), "", "COMMANDS:"]
    rows = [(name, desc) for name, (_, desc) in verbs.items()]
    rows.append(("help, h", "Shows a list of commands or help for one command"))
    out += _tabulate(rows)
    out += ["", "GLOBAL OPTIONS:"]
    out += _tabulate([_flag_row(f) for f in flags if not f.hidden])
    return "\n".join(out) + "\n"
