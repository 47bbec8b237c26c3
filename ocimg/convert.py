"""An image config (image-spec) turned into a runtime config.json (runtime-spec 1.3.0).

Follows the image-spec's conversion rules (Entrypoint + Cmd, Env, WorkingDir, User,
Labels and other fields as annotations) on top of a template like `runc spec`'s:
the same namespaces, mounts, masked and read-only paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocimg.errors import BundleError
from ocimg.store import Image
from ocimg.users import User
from ocirt.config.defaults import default_spec

OCI_VERSION = "1.3.0"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# What `runc spec` grants: enough for a shell, not for a package manager.
RUNC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
# Podman's default set (containers.conf): images are built expecting to chown, setuid
# and bind low ports as "root", so this is the default for image-made bundles.
CONTAINER_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
]
CAP_SETS = {"container": CONTAINER_CAPS, "runc": RUNC_CAPS}

@dataclass
class Options:
    args: list[str] | None = None  # replaces Cmd (the Entrypoint stays), like `docker run IMAGE ARGS`
    entrypoint: list[str] | None = None  # replaces the Entrypoint (and drops Cmd unless args given)
    env: list[str] = field(default_factory=list)  # KEY=VALUE, added or overriding
    hostname: str | None = None
    binds: list[tuple[str, str, bool]] = field(default_factory=list)  # (source, destination, readonly)
    cwd: str | None = None
    caps: str = "container"
    tty: bool = False
    host_network: bool = False
    readonly_rootfs: bool = False


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    out: dict[str, str] = {}
    for item in base + extra:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise BundleError(f"invalid environment entry {item!r} (want KEY=VALUE)")
        out[key] = value
    return [f"{k}={v}" for k, v in out.items()]


def spec_for(image: Image, user: User, opts: Options, hostname: str) -> dict[str, Any]:
    cfg = image.config.config
    entrypoint = opts.entrypoint if opts.entrypoint is not None else list(cfg.get("Entrypoint") or [])
    if opts.args is not None:
        cmd = opts.args
    elif opts.entrypoint is not None:
        cmd = []
    else:
        cmd = list(cfg.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise BundleError(f"{image.name} has no Entrypoint or Cmd: give a command")

    env = merge_env(list(cfg.get("Env") or []), [])
    keys = {e.split("=", 1)[0] for e in env}
    if "PATH" not in keys:
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOME" not in keys:
        env.append(f"HOME={user.home or '/'}")
    if opts.tty and "TERM" not in keys:
        env.append("TERM=xterm")
    env = merge_env(env, opts.env)

    cwd = opts.cwd or cfg.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        cwd = "/" + cwd  # the image-spec allows relative; the runtime-spec wants absolute

    caps = CAP_SETS.get(opts.caps)
    if caps is None:
        raise BundleError(f"unknown capability set {opts.caps!r} (choose {', '.join(CAP_SETS)})")

    process: dict[str, Any] = {
        "terminal": opts.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)

    # The namespaces, mounts and masked/read-only paths of `ocirt spec` (runc spec's), so the
    # two tools never drift apart.
    base = default_spec()
    mounts = base["mounts"]
    for source, dest, ro in opts.binds:
        if not dest.startswith("/"):
            raise BundleError(f"bind mount destination {dest!r} must be absolute")
        mounts.append({"destination": dest, "type": "bind", "source": source,
                       "options": ["rbind", "ro" if ro else "rw"]})

    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    if opts.host_network:
        namespaces = [n for n in namespaces if n["type"] != "network"]

    return {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": "rootfs", "readonly": opts.readonly_rootfs},
        "hostname": hostname,
        "mounts": mounts,
        "annotations": annotations(image),
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": namespaces,
            "maskedPaths": base["linux"]["maskedPaths"],
            "readonlyPaths": base["linux"]["readonlyPaths"],
        },
    }


def annotations(image: Image) -> dict[str, str]:
    """The image-spec conversion's annotations; Labels may not override these."""
    raw = image.config.raw
    cfg = image.config.config
    out: dict[str, str] = {str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()}
    fixed = {
        "org.opencontainers.image.os": raw.get("os"),
        "org.opencontainers.image.architecture": raw.get("architecture"),
        "org.opencontainers.image.variant": raw.get("variant"),
        "org.opencontainers.image.os.version": raw.get("os.version"),
        "org.opencontainers.image.os.features": ",".join(raw.get("os.features") or []) or None,
        "org.opencontainers.image.author": raw.get("author"),
        "org.opencontainers.image.created": raw.get("created"),
        "org.opencontainers.image.stopSignal": cfg.get("StopSignal"),
        "org.opencontainers.image.exposedPorts": ",".join(sorted(cfg.get("ExposedPorts") or {})) or None,
        "org.opencontainers.image.ref.name": image.name,
        "ocimg.manifest.digest": str(image.digest),
    }
    out.update({k: str(v) for k, v in fixed.items() if v})
    return out
