"""Log lines in runc's formats, because managers parse them.

containerd keeps the last `"level":"error"` line of the JSON stream; podman parses the whole
oci-log file as ONE object. So a failing command writes exactly one error line, and warnings
or debug lines only appear when they are asked for (--debug) or really warranted.
"""

from __future__ import annotations

import os
import sys
import time

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
        self.debug_enabled = False
        self._fd: int | None = None

    def configure(self, path: str | None, fmt: str, debug: bool) -> None:
        self.path = path or None
        self.format = fmt
        self.debug_enabled = debug
        if self.path is not None:
            # Opened at once, as runc does: a manager may read the file after any call.
            try:
                self._open()
            except OSError:
                pass

    def _line(self, level: str, msg: str) -> str:
        if self.format == "json":
            return '{"level":%s,"msg":%s,"time":%s}\n' % (
                _json_str(level), _json_str(msg), _json_str(_rfc3339()))
        return 'time="%s" level=%s msg=%s\n' % (_rfc3339(), level, _json_str(msg))

    def _write(self, data: str) -> None:
        if self.path is None:
            sys.stderr.write(data)
            sys.stderr.flush()
            return
        os.write(self._open(), data.encode("utf-8", "replace"))

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC,
                               0o644)
        return self._fd

    def log(self, level: str, msg: str) -> None:
        if level == "debug" and not self.debug_enabled:
            return
        try:
            self._write(self._line(level, msg))
        except OSError:
            pass

    def debug(self, msg: str) -> None:
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
