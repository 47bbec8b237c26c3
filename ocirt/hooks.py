"""OCI hooks: run in listed order, the container's state JSON on stdin.

Where each kind runs (runtime vs container namespaces, and the container kinds' working
directory) is decided by the caller; this module runs a list of hooks from the process that
calls it, each with exactly its own args and env and the signal state of a fresh process, the
runtime's kinds from the bundle directory.
"""

from __future__ import annotations

import os

from ocirt import jsonio
from ocirt.errors import HookError
from ocirt.log import logger
from ocirt.linux import signals

# A pipe's capacity unless raised with F_SETPIPE_SZ.
_PIPE_BUF_DEFAULT = 65536

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# The kinds that run in the runtime's namespaces; createContainer and startContainer run in the
# container's.
RUNTIME_KINDS = ("prestart", "createRuntime", "poststart", "poststop")


# poll(2)'s timeout is an int of milliseconds.
_MAX_TIMEOUT = (1 << 31) // 1000 - 1


def run_hook(hook: dict, state_json: bytes, cwd: str | None = None) -> None:
    """Run one hook with exactly its own args and env, the state on stdin, a clean signal state
    (signals.reset_for_exec) and `cwd` (None: ours)."""
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
    stdin = _filled_pipe(state_json)
    try:
        proc = subprocess.Popen(args, executable=path, env=env, cwd=cwd, stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                preexec_fn=signals.reset_for_exec)
    finally:
        os.close(stdin)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise HookError(f"hook ran past specified timeout of {timeout:.1f}s") from None
    if proc.returncode != 0:
        how = (f"exit status {proc.returncode}" if proc.returncode > 0
               else f"signal: {signals.describe(-proc.returncode)}")
        # runc 1.1.5's wording, which its tests (and so users' scripts) match.
        raise HookError(f"error running hook: {how}, "
                        f"stdout: {out.decode(errors='replace').strip()}, "
                        f"stderr: {err.decode(errors='replace').strip()}")


def _filled_pipe(data: bytes) -> int:
    """The read end of a pipe that already holds all of `data`: the hook may exit without
    reading it and we never write to a pipe without a reader (which would kill a process whose
    SIGPIPE is back to default, as the init's is when it runs startContainer hooks)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        if len(data) > _PIPE_BUF_DEFAULT:
            import fcntl  # only for states with large annotations; see preload()
            try:
                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, len(data))
            except OSError:
                pass
        os.set_blocking(w, False)
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(w, view):]
            except BlockingIOError:
                raise HookError(f"the container state ({len(data)} bytes) does not fit in a "
                                "hook's stdin pipe") from None
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    return r


def run(kind: str, hooks: list[dict] | None, state: dict, *, cwd: str | None = None,
        warn_only: bool = False) -> None:
    """Run every hook of one kind. A failure raises, except for poststop (warn_only), where the
    spec says the remaining hooks still run and the failure is only logged.

    Working directory, as runc 1.1.5: the bundle for the hooks run in the runtime's namespaces
    (runc chdirs there), `cwd` for the container's (createContainer: the rootfs; startContainer:
    None, the process's cwd)."""
    if not hooks:
        return
    if kind in RUNTIME_KINDS:
        cwd = _bundle_dir(state)
    data = jsonio.dumps(state).encode()
    for i, hook in enumerate(hooks):
        logger.debug("running %s hook #%d: %s", kind, i, hook.get("path"))
        try:
            run_hook(hook, data, cwd)
        except (HookError, OSError) as e:
            msg = f"error running {kind} hook #{i}: {e}"
            if warn_only:
                logger.warning(msg)
                continue
            raise HookError(msg) from None


def _bundle_dir(state: dict) -> str:
    # A manager may have removed the bundle before poststop hooks run.
    bundle = state.get("bundle") or "/"
    return bundle if os.path.isdir(bundle) else "/"


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
        if has(config, "startContainer"):
            import fcntl  # noqa: F401  (_filled_pipe, after pivot_root)


def has(config: dict, *kinds: str) -> bool:
    hooks = config.get("hooks") or {}
    return any(hooks.get(k) for k in kinds)

