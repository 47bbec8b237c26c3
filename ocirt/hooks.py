"""OCI hooks: run in listed order, the container's state JSON on stdin.

Where each kind runs (runtime vs container namespaces) is decided by the caller; this module
only runs a list of hooks from the process that calls it.
"""

from __future__ import annotations


from ocirt import jsonio
from ocirt.errors import HookError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


# poll(2)'s timeout is an int of milliseconds.
_MAX_TIMEOUT = (1 << 31) // 1000 - 1


def run_hook(hook: dict, state_json: bytes) -> None:
    # Imported here: subprocess costs milliseconds and most containers have no hooks. A hook run
    # after pivot_root (startContainer) needs it imported before: see preload().
    import subprocess
    path = hook["path"]
    args = hook.get("args") or [path]
    env: dict[str, str] = {}
    for item in hook.get("env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    timeout = hook.get("timeout")
    if timeout is not None and timeout > _MAX_TIMEOUT:
        timeout = None  # poll(2) cannot wait longer in one call: no practical limit anyway
    proc = subprocess.Popen(args, executable=path, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                            cwd="/")
    try:
        out, err = proc.communicate(state_json, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise HookError(f"timeout after {timeout}s") from None
    except BrokenPipeError:
        out, err = proc.communicate()
    if proc.returncode != 0:
        how = (f"exit status {proc.returncode}" if proc.returncode > 0
               else f"signal: {-proc.returncode}")
        raise HookError(f"{how}, stdout: {out.decode(errors='replace').strip()}, "
                        f"stderr: {err.decode(errors='replace').strip()}")


def run(kind: str, hooks: list[dict] | None, state: dict, *, warn_only: bool = False) -> None:
    """Run every hook of one kind. A failure raises, except for poststop (warn_only), where the
    spec says the remaining hooks still run and the failure is only logged."""
    if not hooks:
        return
    data = jsonio.dumps(state).encode()
    for i, hook in enumerate(hooks):
        try:
            run_hook(hook, data)
        except (HookError, OSError) as e:
            msg = f"error running {kind} hook #{i}: {e}"
            if warn_only:
                from ocirt.log import logger
                logger.warning(msg)
                continue
            raise HookError(msg) from None


def oci_state(cid: str, status: str, pid: int, bundle: str, annotations: dict | None) -> dict:
    from ocirt import OCI_VERSION
    st = {"ociVersion": OCI_VERSION, "id": cid, "status": status, "pid": pid, "bundle": bundle}
    if annotations:
        st["annotations"] = annotations
    return st


def preload(config: dict) -> None:
    """Import what running hooks needs, for a process that will run them where nothing can be
    imported any more (the init after pivot_root)."""
    if has(config, *KINDS):
        import subprocess  # noqa: F401


def has(config: dict, *kinds: str) -> bool:
    hooks = config.get("hooks") or {}
    return any(hooks.get(k) for k in kinds)

