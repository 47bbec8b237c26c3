"""Typed errors. The CLI edge (ocirt.cli.main) is the one place that turns them into a
one-line message, a log line and an exit code."""

from __future__ import annotations


class OcirtError(Exception):
    """An error with a message fit for a user; exit status 1 like runc's fatal()."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(OcirtError):
    """Wrong flags or arguments on the command line."""


class ConfigError(OcirtError):
    """config.json (or a process.json) is invalid; `path` is the JSON path of the bad field."""

    def __init__(self, path: str, message: str, source: str = "config.json") -> None:
        self.path = path
        self.source = source
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__(where + message)


class ContainerNotFound(OcirtError):
    def __init__(self, cid: str = "") -> None:
        super().__init__("container does not exist")
        self.cid = cid


class ContainerExists(OcirtError):
    def __init__(self) -> None:
        super().__init__("container with given ID already exists")


class InvalidID(OcirtError):
    def __init__(self) -> None:
        super().__init__("invalid container ID format")


class StateError(OcirtError):
    """An operation not allowed in the container's current status (runc's wording)."""


class ContainerNotRunning(StateError):
    def __init__(self) -> None:
        super().__init__("container not running")


class ContainerPaused(StateError):
    def __init__(self) -> None:
        super().__init__("container paused")


class ContainerNotPaused(StateError):
    def __init__(self) -> None:
        super().__init__("container not paused")


class SetupError(OcirtError):
    """A step of container setup failed (mount, namespace, cgroup, hook, exec...)."""


class HookError(SetupError):
    pass


class CgroupError(SetupError):
    pass


class SecurityError(SetupError):
    """A hardening check refused something (possible breakout, unverified special file)."""


class ExecFailed(OcirtError):
    """`ocirt exec` could not start its process: runc exits 255 then."""

    exit_code = 255


class CriuError(OcirtError):
    """criu could not checkpoint or restore (its own message is quoted from its log)."""


class DependencyError(OcirtError):
    """A feature needs a package that is not installed."""
