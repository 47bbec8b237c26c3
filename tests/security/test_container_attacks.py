"""Known runtime escapes replayed against real ocirt containers, each shown to fail:
CVE-2019-5736 (overwrite the host interpreter through /proc/self/exe), CVE-2016-9962 (inspect
or ptrace the runtime's process inside the container), CVE-2024-21626 (leaked fd as cwd) and
CVE-2022-29162 (`exec --cap` widening the inheritable set). See SECURITY.md section 1."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

CAP_NET_RAW = 13


def wait_for(pred, timeout: float = 10.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def field(text: str, key: str) -> str:
    for word in text.split():
        if word.startswith(key + "="):
            return word[len(key) + 1:]
    raise AssertionError(f"{key}= not in {text!r}")


# --- CVE-2019-5736 ------------------------------------------------------------------------------

# Run by the kernel with the interpreter "/proc/self/exe": the binary of the process that called
# execve, i.e. ocirt's host python. The payload never writes: it only tries to open the binary
# for writing (O_APPEND, no truncation) directly and again, after it stopped executing it,
# through an O_PATH handle reopened via /proc/self/fd. Results go to a file in the rootfs.
EVIL = r'''#!/proc/self/exe
import os, sys
out = ["exe=" + os.readlink("/proc/self/exe").replace(" ", "_")]
try:
    fd = os.open("/proc/self/exe", os.O_WRONLY | os.O_APPEND)
    os.close(fd)
    out.append("direct=OPENED")
except OSError as e:
    out.append("direct=%d" % e.errno)
p = os.open("/proc/self/exe", os.O_PATH)
out.append("rdonly=%d" % bool(os.fstatvfs(p).f_flag & os.ST_RDONLY))
res = sys.argv[1]
with open(res + ".part", "w") as f:
    f.write(" ".join(out) + "\n")
os.set_inheritable(p, True)
os.execv("/bin/sh", ["sh", "-c",
         "if (exec 9>>/proc/self/fd/%d) 2>/dev/null; then r=OPENED; else r=refused; fi; "
         "echo reopen=$r >> %s.part; mv %s.part %s" % (p, res, res, res)])
'''


@pytest.fixture
def evil(bundle, rootfs_template):
    """A rootfs where the host interpreter can actually start (its loader and stdlib come from a
    read-only bind of the host's /usr), with /bin/evil = '#!/proc/self/exe' + python payload."""
    rootfs = bundle.own_rootfs(rootfs_template)
    for name in ("lib", "lib64"):
        if os.path.islink(f"/{name}"):
            os.symlink(os.readlink(f"/{name}"), rootfs / name)
    (rootfs / "bin" / "evil").write_text(EVIL)
    (rootfs / "bin" / "evil").chmod(0o755)
    bundle.config["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                                    "options": ["rbind", "ro"]})
    bundle.write()
    return rootfs


def _run_evil(ocirt, bundle, cid, rootfs, mode: str) -> tuple[str, str, str]:
    """Returns (payload result, host interpreter path, its hash before)."""
    if mode == "init":
        # The interpreter-based init: with ocirt-wait, /proc/self/exe is that sealed memfd
        # (test_cve_2019_5736_waiting_init_program_is_a_sealed_execute_only_memfd).
        bundle.args("/bin/evil", "/tmp/result").init_waits_in_python()
    else:
        bundle.args("sleep", "60")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    pid = ocirt.state(cid)["pid"]
    # The init waiting for `start` runs ocirt's interpreter: the host's, seen through the
    # launcher's read-only bind or the detached read-only mount a pip install re-executes from.
    interp = os.path.realpath("/usr/bin/python3")
    if mode == "init":
        assert os.path.samefile(f"/proc/{pid}/exe", interp)
    before = sha256(interp)
    ocirt.ok("start", cid)
    if mode == "exec":
        p = ocirt("exec", cid, "/bin/evil", "/tmp/result")
        assert p.returncode == 0, p.stderr
    result = rootfs / "tmp" / "result"
    wait_for(result.exists, what="the payload's result")
    return result.read_text(), interp, before


# Both ways of starting ocirt: the launcher (hack/ocirt) and a pip install's console script.
@pytest.mark.parametrize("mode", ["init", "exec"])
def test_cve_2019_5736_container_cannot_open_host_interpreter_for_writing(
        any_ocirt, bundle, cid, evil, mode):
    out, interp, before = _run_evil(any_ocirt, bundle, cid, evil, mode)
    assert field(out, "exe") != ""                  # the attack really ran as the interpreter
    assert field(out, "direct") != "OPENED", out
    assert field(out, "reopen") == "refused", out
    assert sha256(interp) == before


@pytest.mark.parametrize("mode", ["init", "exec"])
def test_cve_2019_5736_interpreter_seen_by_container_is_read_only(
        any_ocirt, bundle, cid, evil, mode):
    """The test above could pass only because the host interpreter is busy (pytest runs it:
    ETXTBSY). The defence must not depend on that: what the container can reach through
    /proc/self/exe is a read-only view of it (the launcher's read-only bind mount, or the
    detached read-only mount a pip install re-executes from)."""
    out, _, _ = _run_evil(any_ocirt, bundle, cid, evil, mode)
    exe = field(out, "exe")
    # The kernel reports ETXTBSY before EROFS while anything executes the file, so the open's
    # errno cannot show the mount; the mount's own read-only flag does.
    assert field(out, "rdonly") == "1" or exe.startswith("/memfd:"), out


def test_cve_2019_5736_waiting_init_program_is_a_sealed_execute_only_memfd(ocirt, bundle, cid):
    """ocirt-wait, the program the init waits in, is what a container's `#!/proc/self/exe`
    would reach: a memfd nobody can write (not even the host's root), nor read from inside."""
    import fcntl
    bundle.args("sleep", "60")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    exe = f"/proc/{ocirt.state(cid)['pid']}/exe"
    assert os.readlink(exe).startswith("/memfd:ocirt-wait")
    # ETXTBSY while it runs; once the init has exec'd the container's process, the seals.
    with pytest.raises(OSError):
        os.open(exe, os.O_WRONLY | os.O_APPEND)
    fd = os.open(exe, os.O_RDONLY)
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals & 0xF == 0xF          # SEAL, SHRINK, GROW, WRITE
        assert os.fstat(fd).st_mode & 0o777 == 0o111
    finally:
        os.close(fd)


# --- CVE-2016-9962 ------------------------------------------------------------------------------

PEEK = r'''for p in /proc/[0-9]*; do
  case "$(head -c 64 $p/cmdline 2>/dev/null | tr '\0' ' ')" in */python3*|ocirt-wait*) ;; *) continue;; esac
  n=${p#/proc/}
  if readlink $p/exe >/dev/null 2>&1; then echo $n:exe=READ; else echo $n:exe=denied; fi
  if cat $p/environ >/dev/null 2>&1; then echo $n:environ=READ; else echo $n:environ=denied; fi
  if head -c1 $p/mem >/dev/null 2>&1; then echo $n:mem=READ; else echo $n:mem=denied; fi
  if cat $p/stack >/dev/null 2>&1; then echo $n:stack=READ; else echo $n:stack=denied; fi
  for f in $p/fd/*; do
    if readlink $f >/dev/null 2>&1; then echo $n:fd=READ; else echo $n:fd=denied; fi
  done
done
cat /proc/self/environ >/dev/null && echo self=READ'''


def _peek_results(out: str) -> dict[str, set[str]]:
    res: dict[str, set[str]] = {}
    for line in out.split():
        if ":" in line:
            _, kv = line.split(":", 1)
            k, v = kv.split("=")
            res.setdefault(k, set()).add(v)
    return res


@pytest.mark.parametrize("user", [None, "1000:1000"])
def test_cve_2016_9962_created_init_is_not_inspectable_from_the_container(
        ocirt, bundle, cid, user):
    # The init waits between create and start (as ocirt-wait, or as the runtime's interpreter),
    # with a handle on the exec fifo open: a root (without CAP_SYS_PTRACE) or non-root process
    # inside must get nothing.
    bundle.args("sleep", "60")
    ocirt.ok("create", "--bundle", str(bundle.path), cid)
    args = ["exec"] + (["--user", user] if user else []) + [cid, "sh", "-c", PEEK]
    out = ocirt.ok(*args).stdout.decode()
    assert "self=READ" in out                       # the probe can read what it may read
    assert out.count("1:exe=") == 1, out            # it found the waiting init (pid 1)
    res = _peek_results(out)
    for k in ("exe", "environ", "mem", "stack", "fd"):
        assert res.get(k) == {"denied"}, (k, out)
    assert ocirt.state(cid)["status"] == "created"


def test_cve_2016_9962_exec_process_is_not_inspectable_while_being_set_up(
        ocirt, bundle, cid, rootfs_template):
    """Hold an `ocirt exec` inside the container before its execve -- still the runtime's
    interpreter with all of the runtime's capabilities and fds -- by making the container's
    /etc/passwd a FIFO (the init looks HOME up there), and look at it from another process."""
    rootfs = bundle.own_rootfs(rootfs_template)
    bundle.args("sleep", "60")
    ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    passwd = rootfs / "etc" / "passwd"
    passwd.unlink()
    os.mkfifo(passwd)
    held = subprocess.Popen(ocirt.cmd("exec", cid, "sh", "-c", "echo released"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def blocked_pid():
            for p in os.listdir("/proc"):
                if p.isdigit() and p != str(held.pid):
                    try:
                        if open(f"/proc/{p}/wchan").read() == "wait_for_partner" and \
                                cid.encode() in open(f"/proc/{p}/cmdline", "rb").read():
                            return int(p)
                    except OSError:
                        pass
            return None
        host_pid = wait_for(blocked_pid, what="the exec process blocked on the FIFO")
        with open(f"/proc/{host_pid}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        assert int(st["CapEff"], 16) & (1 << 19), "the held process should be privileged"
        out = ocirt.ok("exec", "--env", "HOME=/", cid, "sh", "-c", PEEK).stdout.decode()
        inner = st["NSpid"].split()[-1]
        assert f"{inner}:exe=denied" in out, out
        res = _peek_results(out)
        for k in ("exe", "environ", "mem", "stack", "fd"):
            assert res.get(k) == {"denied"}, (k, out)
    finally:
        try:
            fd = os.open(passwd, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
        try:
            out, err = held.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            held.kill()
            held.communicate()
            raise
    assert out == b"released\n", err


# --- CVE-2024-21626 -----------------------------------------------------------------------------

# From a cwd inside the container, going up ends at the container's root (which has the marker);
# from a leaked host directory it would end at the host's root.
ESCAPE_CHECK = "pwd; ls " + "../" * 12 + " | grep -c OCIRT_ROOTFS_MARKER"


@pytest.fixture
def marked(bundle, rootfs_template):
    rootfs = bundle.own_rootfs(rootfs_template)
    (rootfs / "OCIRT_ROOTFS_MARKER").write_text("")
    return rootfs


def test_cve_2024_21626_process_cwd_through_proc_self_fd_never_reaches_the_host(
        ocirt, bundle, marked):
    from ocirt_testlib import unique_id
    for n in range(3, 21):
        cid = unique_id()
        bundle.config["process"]["cwd"] = f"/proc/self/fd/{n}"
        bundle.sh(ESCAPE_CHECK)
        p = ocirt("run", "--bundle", str(bundle.path), cid)
        if p.returncode != 0:
            assert b"level=error" in p.stderr, p.stderr
            continue
        lines = p.stdout.decode().splitlines()
        assert lines[0].startswith("/") and lines[-1] == "1", (n, lines)


def test_cve_2024_21626_exec_cwd_through_proc_self_fd_never_reaches_the_host(
        ocirt, bundle, cid, marked):
    bundle.args("sleep", "60")
    ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    for n in range(3, 21):
        p = ocirt("exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c", ESCAPE_CHECK)
        if p.returncode != 0:
            assert b"exec failed" in p.stderr, p.stderr
            continue
        lines = p.stdout.decode().splitlines()
        assert lines[0].startswith("/") and lines[-1] == "1", (n, lines)


LIST_FDS = "ls /proc/self/fd"


def _fds(out: str) -> list[int]:
    return sorted(int(x) for x in out.split())


def test_cve_2024_21626_init_and_exec_processes_get_only_stdio(ocirt, bundle, cid):
    bundle.sh(LIST_FDS + "; exec sleep 60")
    ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    # `ls` itself holds one directory fd (the lowest free number: 3).
    assert _fds(ocirt.ok("exec", cid, "sh", "-c", LIST_FDS).stdout.decode()) == [0, 1, 2, 3]
    # The init's fds, seen from inside: the shell that became `sleep`.
    out = ocirt.ok("exec", cid, "ls", "/proc/1/fd").stdout.decode()
    assert _fds(out) == [0, 1, 2]


def test_cve_2024_21626_run_output_of_ls_shows_only_stdio(ocirt, bundle, cid):
    bundle.sh(LIST_FDS)
    p = ocirt.ok("run", "--bundle", str(bundle.path), cid)
    assert _fds(p.stdout.decode()) == [0, 1, 2, 3]


def _with_fds_3_4(cmd: list[str], a: str, b: str) -> tuple[list[str], dict[str, str]]:
    # The fds must be 3 and 4 in ocirt: let a shell place them.
    return ["bash", "-c", 'exec "$@" 3<"$A" 4<"$B"', "bash", *cmd], {"A": a, "B": b}


@pytest.mark.parametrize("how", ["run", "exec"])
def test_preserve_fds_passes_exactly_the_preserved_fds(ocirt, bundle, cid, tmp_path, how):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("AAA\n")
    b.write_text("BBB\n")
    script = LIST_FDS + "; cat /proc/self/fd/3 /proc/self/fd/4"
    if how == "run":
        bundle.sh(script)
        cmd = ocirt.cmd("run", "--preserve-fds", "2", "--bundle", str(bundle.path), cid)
    else:
        bundle.args("sleep", "60")
        ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
        cmd = ocirt.cmd("exec", "--preserve-fds", "2", cid, "sh", "-c", script)
    argv, env = _with_fds_3_4(cmd, str(a), str(b))
    p = subprocess.run(argv, env=dict(os.environ, **env), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode().split("AAA")[0]
    assert _fds(out) == [0, 1, 2, 3, 4, 5]          # 5: the fd `ls` reads the directory with
    assert p.stdout.decode().endswith("AAA\nBBB\n")


# --- CVE-2022-29162 -----------------------------------------------------------------------------

def _status(out: str) -> dict[str, int]:
    return {k: int(v, 16) for k, _, v in (l.partition(":\t") for l in out.splitlines())
            if k.startswith("Cap")}


def test_exec_cap_never_adds_to_the_inheritable_set(ocirt, bundle, cid):
    bundle.args("sleep", "60")
    ocirt.ok("run", "-d", "--bundle", str(bundle.path), cid)
    out = ocirt.ok("exec", "--cap", "CAP_NET_RAW", cid, "grep", "^Cap",
                   "/proc/self/status").stdout.decode()
    st = _status(out)
    assert st["CapInh"] == 0 and st["CapAmb"] == 0
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert st[k] >> CAP_NET_RAW & 1, (k, out)
    init = _status(ocirt.ok("exec", cid, "grep", "^Cap", "/proc/1/status").stdout.decode())
    assert init["CapInh"] == 0 and not init["CapBnd"] >> CAP_NET_RAW & 1
