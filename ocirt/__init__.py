"""ocirt: an OCI runtime (runtime-spec 1.3.0) for Linux, written in Python."""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"
