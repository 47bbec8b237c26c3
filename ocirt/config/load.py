"""Read and fully validate a bundle's config.json (or an exec process.json) before any side
effect of `create`/`exec`."""

from __future__ import annotations

from ocirt import jsonio
import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ocirt.config.validate import validate_config, validate_process
from ocirt.errors import ConfigError


def _read_json(path: str, source: str) -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("", f"{path}: no such file", source) from None
    except OSError as e:
        raise ConfigError("", f"cannot read {path}: {e.strerror}", source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("", f"not valid UTF-8 at byte {e.start}", source) from None
    try:
        return jsonio.loads(text)
    except ValueError as e:  # json.JSONDecodeError, raised by jsonio's fallback
        where = (f" at line {e.lineno} column {e.colno}" if hasattr(e, "lineno") else "")
        raise ConfigError("", f"invalid JSON{where}: {getattr(e, 'msg', e)}", source) from None
    except RecursionError:
        raise ConfigError("", "invalid JSON: nested too deeply", source) from None


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
    proc: dict[str, Any] = _read_json(path, path)
    validate_process(proc, path)
    return proc
