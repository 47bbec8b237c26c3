"""Read and fully validate a bundle's config.json (or an exec process.json) before any side
effect of `create`/`exec`."""

from __future__ import annotations

from ocirt import jsonio
import os
import stat
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ocirt.config.validate import format_path, validate_config, validate_process
from ocirt.errors import ConfigError

# Far above any real config (seccomp profiles are ~100 KiB, Kubernetes caps annotations at
# 256 KiB). A 100 MB config would cost every create, state and delete seconds and 0.5 GB: the
# config is kept in state.json, which each of them reads.
MAX_SIZE = 16 << 20


def _read_json(path: str, source: str, files_only: bool = True) -> Any:
    try:
        # O_NONBLOCK: a FIFO (or a symlink to one) as config.json must not hang create.
        # `exec --process /dev/stdin` reads a pipe, as runc allows.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if files_only else 0))
        with open(fd, "rb") as f:
            if files_only and not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError("", f"{path} is not a regular file", source)
            data = f.read(MAX_SIZE + 1)
    except FileNotFoundError:
        raise ConfigError("", f"{path}: no such file", source) from None
    except OSError as e:
        raise ConfigError("", f"cannot read {path}: {e.strerror}", source) from None
    if len(data) > MAX_SIZE:
        raise ConfigError("", f"is larger than {MAX_SIZE >> 20} MiB", source)
    if data.startswith(b"\xef\xbb\xbf"):
        # Go's decoder refuses it too; json.loads would suggest another codec.
        raise ConfigError("", "invalid JSON: starts with a UTF-8 byte order mark", source)
    try:
        text = data.decode("utf-8")
        bad_utf8 = False
    except UnicodeDecodeError:
        # Decoded anyway, to report which string holds the bad bytes.
        text = data.decode("utf-8", "surrogateescape")
        bad_utf8 = True
    try:
        doc = jsonio.loads(text)
    except jsonio.BadNumber as e:
        raise ConfigError(format_path(e.parts), e.message, source) from None
    except ValueError as e:  # json.JSONDecodeError, raised by jsonio's fallback
        where = (f" at line {e.lineno} column {e.colno}" if hasattr(e, "lineno") else "")
        raise ConfigError("", f"invalid JSON{where}: {getattr(e, 'msg', e)}", source) from None
    except RecursionError:
        raise ConfigError("", "invalid JSON: nested too deeply", source) from None
    # Lone surrogates come from invalid UTF-8 (decoded above) or from \ud800-\udfff escapes;
    # only then is the document walked.
    if bad_utf8 or "\\ud" in text or "\\uD" in text:
        _refuse_surrogates(doc, source)
    return doc


def _refuse_surrogates(doc: object, source: str) -> None:
    """Refuse strings that are not valid Unicode: no syscall or file can take them (Go's
    decoder would silently turn them into U+FFFD, a different name than the one written)."""
    stack: list[tuple[object, tuple]] = [(doc, ())]
    while stack:
        v, parts = stack.pop()
        if isinstance(v, dict):
            for k in v:
                if not _is_unicode(k):
                    raise ConfigError(format_path(parts + (_printable(k),)),
                                      "key is not valid UTF-8 text", source)
            stack.extend((v[k], parts + (k,)) for k in reversed(v))  # in document order
        elif isinstance(v, list):
            stack.extend((v[i], parts + (i,)) for i in range(len(v) - 1, -1, -1))
        elif isinstance(v, str) and not _is_unicode(v):
            raise ConfigError(format_path(parts), "is not valid UTF-8 text", source)


def _is_unicode(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(s: str) -> str:
    return s.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")


def load_bundle(bundle: str) -> tuple[str, dict[str, Any]]:
    """Return (absolute bundle path, validated config).

    In the returned config `root.path` is replaced by the absolute, symlink-free path of the
    rootfs, so later steps never resolve it again relative to some other directory.
    """
    bundle_abs = os.path.abspath(bundle)
    if not os.path.isdir(bundle_abs):
        what = "is not a directory" if os.path.exists(bundle_abs) else "does not exist"
        raise ConfigError("", f"{bundle_abs} {what}", "bundle")
    cfg = _read_json(os.path.join(bundle_abs, "config.json"), "config.json")
    validate_config(cfg)
    root = cfg.get("root")
    if root is None:
        # Optional in the schema (other platforms), but a Linux container needs a rootfs.
        raise ConfigError("root", "is a required property")
    rootfs = os.path.join(bundle_abs, root["path"])
    if not os.path.isdir(rootfs):
        what = "is not a directory" if os.path.exists(rootfs) else "does not exist"
        raise ConfigError("root.path", f"rootfs {rootfs} {what}")
    root["path"] = os.path.realpath(rootfs)
    return bundle_abs, cfg


def load_process(path: str) -> dict[str, Any]:
    """Read and validate the process object given to `exec --process`."""
    proc: dict[str, Any] = _read_json(path, path, files_only=False)
    validate_process(proc, path)
    return proc
