"""Python packages beyond the standard library, for the few features that need one.

ocirt runs on Debian's python3 with -I -S, so `site` never adds /usr/lib/python3/dist-packages
to sys.path: the hot path cannot import anything but the standard library and ocirt. A verb or
a config field that needs a package (jsonschema for `ocirt validate`, pyroute2 for
linux.netDevices, protobuf for checkpoint and restore) asks for it here: Debian's package, root-owned next to the interpreter, is
added to the path only then, so no other call pays for it or can be influenced by it.
"""

from __future__ import annotations

import sys

from ocirt.errors import DependencyError

DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def require(module: str, debian_package: str, purpose: str) -> object:
    """Import and return `module`, or raise DependencyError naming the package to install."""
    try:
        __import__(module)
    except ImportError:
        if DEBIAN_DIST_PACKAGES not in sys.path:
            sys.path.append(DEBIAN_DIST_PACKAGES)
        try:
            __import__(module)
        except ImportError:
            raise DependencyError(f"{purpose} needs the Python package {module}: install "
                                  f"Debian's {debian_package} (hack/install does)") from None
    return sys.modules[module]
