"""ocirt: an OCI runtime (runtime-spec 1.3.0) for Linux, written in Python."""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"

# The runtime-spec JSON Schemas: ocirt/specs is a symlink to the checkout's specs/, and holds
# their copies in an installed wheel. ocirt itself validates with code generated from them
# (ocirt/config/_schema_*.py); they are there for tools and for checking documents against.
SPECS_DIR = __path__[0] + "/specs"
