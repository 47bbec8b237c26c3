"""Log lines in runc's formats, because managers parse them.

containerd keeps the last `"level":"error"` line of the JSON stream; podman parses the whole
oci-log file as ONE object. So a failing command writes exactly one error line, and warnings
or debug lines only appear when they are asked for (--debug) or really warranted.
"""

from __future__ import annotations

import posix
import sys
import time

_APPEND_FLAGS = posix.O_CREAT | posix.O_WRONLY | posix.O_APPEND | posix.O_CLOEXEC

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3, "fatal": 4}


def _rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _json_str(s: str) -> str:
    # json.dumps would pull in the json package on paths that otherwise need none.
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class Logger:
    def __init__(self) -> None:
        self.path: str | None = None
        self.format = "text"
        # Read by callers that would build an expensive message: debug lines cost nothing
        # but this check when --debug is off.
        self.debug_enabled = False
        self._fd: int | None = None

    def configure(self, path: str | None, fmt: str, debug: bool) -> None:
        """Raises OSError when the log file cannot be opened (runc fails then too); the
        logger is left writing to stderr, in the given format."""
        self.format = fmt
        if path:
            # Opened at once, as runc does: a manager may read the file after any call.
            self._fd = posix.open(path, _APPEND_FLAGS, 0o644)
            self.path = path
        self.debug_enabled = debug
        if self.path is None and debug:
            # The forked init writes its debug lines here too, after its own stdio became the
            # container's (console, preserved stdio): a private copy of our stderr.
            try:
                self._fd = posix.dup(2)
            except OSError:
                pass    # no stderr: nowhere to write debug lines to anyway

    def child_fds(self) -> set[int]:
        """The fds a forked child keeps open to go on logging. Close-on-exec: they never reach
        the container's process."""
        if self.debug_enabled and self._fd is not None:
            return {self._fd}
        return set()

    def _line(self, level: str, msg: str) -> str:
        if self.format == "json":
            return '{"level":%s,"msg":%s,"time":%s}\n' % (
                _json_str(level), _json_str(msg), _json_str(_rfc3339()))
        return 'time="%s" level=%s msg=%s\n' % (_rfc3339(), level, _json_str(msg))

    def _write(self, data: str) -> None:
        if self._fd is None and self.path is None:
            sys.stderr.write(data)
            sys.stderr.flush()
            return
        # One write(2) per line: lines of the runtime and of its children never interleave.
        posix.write(self._open(), data.encode("utf-8", "replace"))

    def _open(self) -> int:
        if self._fd is None:
            self._fd = posix.open(self.path, _APPEND_FLAGS, 0o644)
        return self._fd

    def log(self, level: str, msg: str) -> None:
        if level == "debug" and not self.debug_enabled:
            return
        try:
            self._write(self._line(level, msg))
        except OSError:
            pass

    def debug(self, msg: str, *args: object) -> None:
        """A debug line; `msg % args` is only formatted when --debug is on."""
        if not self.debug_enabled:
            return
        if args:
            msg = msg % args
        self.log("debug", msg)

    def warning(self, msg: str) -> None:
        self.log("warning", msg)

    def error(self, msg: str) -> None:
        self.log("error", msg)

    def fatal(self, msg: str) -> None:
        """The failure path: one error line in the log, and the message on stderr as runc
        prints it when the log is not stderr."""
        self.log("error", msg)
        if self.path is not None:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()


logger = Logger()
