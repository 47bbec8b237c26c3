"""The options checkpoint and restore take from their command lines, checked with runc's
rules and words (its checkpoint.go / restore.go)."""

from __future__ import annotations

import os

from ocirt.errors import OcirtError

CLONE_NEWNET = 0x40000000

# --manage-cgroups-mode -> criu_cg_mode's names
CGROUP_MODES = {"soft": "SOFT", "full": "FULL", "strict": "STRICT"}
# --empty-ns: runc knows only the network namespace
EMPTY_NS = {"network": CLONE_NEWNET}


class CriuOptions:
    def __init__(self) -> None:
        self.image_path = ""
        self.work_path = ""
        self.parent_path = ""
        self.leave_running = False
        self.tcp_established = False
        self.ext_unix_sk = False
        self.shell_job = False
        self.file_locks = False
        self.pre_dump = False
        self.auto_dedup = False
        self.lazy_pages = False
        self.status_fd = -1
        self.page_server: tuple[str, int] | None = None
        self.cgroup_mode = ""           # criu_cg_mode name, "" for criu's default
        self.empty_ns = CLONE_NEWNET    # runc manages no network devices: never restored
        self.lsm_profile = ""
        self.lsm_mount_context = ""

    @property
    def log_dir(self) -> str:
        """Where criu writes its log: the work directory, else (criu's default) the images."""
        return self.work_path or self.image_path


def from_flags(parsed) -> CriuOptions:
    """Both verbs' flags, in runc's order: the image paths (made if missing, as runc does for
    restore too), then the page server, the cgroup mode and the empty namespaces."""
    o = CriuOptions()
    o.image_path, o.parent_path = _image_paths(parsed["image-path"], parsed.get("parent-path", ""))
    o.work_path = parsed["work-path"]
    for flag in ("leave-running", "tcp-established", "ext-unix-sk", "shell-job", "file-locks",
                 "pre-dump", "auto-dedup", "lazy-pages"):
        setattr(o, flag.replace("-", "_"), bool(parsed.get(flag, False)))
    o.status_fd = parsed.get("status-fd", -1)
    o.lsm_profile = parsed.get("lsm-profile", "")
    o.lsm_mount_context = parsed.get("lsm-mount-context", "")
    if parsed.get("page-server"):
        o.page_server = _page_server(parsed["page-server"])
    mode = parsed["manage-cgroups-mode"]
    if mode:
        if mode not in CGROUP_MODES:
            raise OcirtError("Invalid manage cgroups mode")
        o.cgroup_mode = CGROUP_MODES[mode]
    for ns in parsed["empty-ns"]:
        if ns not in EMPTY_NS:
            raise OcirtError(f'namespace "{ns}" is not supported')
        o.empty_ns |= EMPTY_NS[ns]
    return o


def _image_paths(image: str, parent: str) -> tuple[str, str]:
    image = os.path.abspath(image or "checkpoint")   # runc's default: ./checkpoint
    os.makedirs(image, 0o700, exist_ok=True)
    if not parent:
        return image, ""
    if os.path.isabs(parent):
        raise OcirtError("--parent-path must be relative")
    real = os.path.normpath(os.path.join(image, parent))   # Go's filepath.Join cleans
    try:
        st = os.stat(real)
    except OSError as e:
        raise OcirtError(f"invalid --parent-path: stat {real}: "
                         f"{(e.strerror or str(e)).lower()}") from None
    import stat
    if not stat.S_ISDIR(st.st_mode):
        raise OcirtError(f"invalid --parent-path: stat {real}: not a directory")
    return image, parent


def _page_server(value: str) -> tuple[str, int]:
    address, sep, port = value.rpartition(":")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if not sep or not address or not port:
        raise OcirtError("Use --page-server ADDRESS:PORT to specify page server")
    if not port.isdigit():
        raise OcirtError("Invalid port number")
    return address, int(port)
