"""The OCI features document (features.md, features-linux.md): what this build of ocirt
implements, decided by the code rather than probed from the host."""

from __future__ import annotations

from ocirt import OCI_VERSION, __version__
from ocirt.hooks import KINDS


def libseccomp_version() -> str | None:
    import ctypes
    import ctypes.util

    class _Ver(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return None
    lib.seccomp_version.restype = ctypes.POINTER(_Ver)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def document() -> dict:
    from ocirt.features_data import MOUNT_OPTIONS, features_linux
    linux = features_linux()
    linux["cgroup"] = {"v1": True, "v2": True, "systemd": True, "systemdUser": True,
                       "rdma": True}
    linux["intelRdt"] = {"enabled": False}
    from ocirt.process.mempolicy import FLAGS, MODES
    linux["memoryPolicy"] = {"modes": list(MODES), "flags": list(FLAGS)}
    linux["mountExtensions"] = {"idmap": {"enabled": True}}
    linux["netDevices"] = {"enabled": True}
    annotations = {"io.github.ocirt.version": __version__}
    lsv = libseccomp_version()
    if lsv:
        annotations["io.github.seccomp.libseccomp.version"] = lsv
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(KINDS),
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": linux,
        "annotations": annotations,
        "potentiallyUnsafeConfigAnnotations": [],
    }
