"""Process security facade used by the init (create) and exec paths.

    p  = prepare(process, linux)      # parse + validate + compile; no side effects
    apply_early(p)                     # root, before setuid
    apply_user(p, process["user"])     # groups, gid, uid (caps kept), umask
    apply_caps(p)                      # capset + ambient (ungrantable caps -> p.warnings), NNP
    fd = apply_seccomp(p)              # LAST before execve; listener fd or None
    send_seccomp_listener(p, fd, state)  # in the runtime process, outside the container mnt ns

Ordering, and why (runc's standard_init_linux.go / finalizeNamespace does the same steps):

* prepare() runs where the host's libraries are reachable (before pivot_root). It is pure: no
  fd is kept, the result is plain data, so the runtime parent can call it before any side effect
  (full validation of process + seccomp at create, as runtime-spec asks) and the forked init
  simply inherits the result. It imports every module the apply_* steps need: after pivot_root
  nothing can be imported.
* apply_early() needs root: raising rlimits / a lower oom_score_adj needs CAP_SYS_RESOURCE,
  RT scheduling / ioprio need CAP_SYS_NICE / CAP_SYS_ADMIN, PR_CAPBSET_DROP needs CAP_SETPCAP,
  LSM exec labels are written for the next execve. Dropping the bounding set does not reduce the
  init's effective set, so the init can still do privileged work afterwards as long as it does
  not execve a helper that should be privileged.
* apply_user(): setgroups and setresgid first (need CAP_SETGID), setresuid last, with
  PR_SET_KEEPCAPS so the permitted set survives a 0 -> non-zero uid switch (the kernel clears
  effective and ambient there; apply_caps sets them again).
* apply_caps(): capset sets effective/permitted/inheritable exactly as configured (inheritable is
  never widened, CVE-2022-29162), then the ambient set (a cap must be in permitted and
  inheritable to be raised), then PR_SET_NO_NEW_PRIVS when asked -- before seccomp (SECURITY.md
  rule 8, 13). Capabilities the kernel will not grant (not held by the runtime, ambient without
  inheritable, ...) are left out and reported in p.warnings (runtime-spec: warn, don't fail).
* apply_seccomp() is last, right before execve (rule 13), so the filter sees as few of the
  init's own syscalls as possible: only startContainer hooks (which run under the filter, as in
  runc) and the answer to `start` come between. Signals are reset before it (the profile need
  not allow rt_sigaction). The kernel only lets a task without no_new_privs install a
  filter if it has CAP_SYS_ADMIN. runc handles that by loading the filter *before* the uid/caps
  change when noNewPrivileges is false -- the filter then has to allow setgroups, setresgid,
  setresuid, capset and prctl, and those run under it. Instead, when seccomp is set, NNP is off
  and the configured permitted set lacks CAP_SYS_ADMIN, apply_caps keeps CAP_SYS_ADMIN in
  effective+permitted (it is already gone from the bounding set, so it can never survive
  execve), apply_seccomp loads the filter and then drops it with one capset. The filter must
  allow capset (every real profile does); if it does not, apply_seccomp fails loudly rather than
  leave the capability behind.
"""

from __future__ import annotations

import os

from ocirt.errors import ConfigError, SetupError
# Everything the apply_* steps need is imported here, at prepare time (see above).
from ocirt.linux import syscalls as sc
from ocirt.process import caps as _caps
from ocirt.process import ioprio as _ioprio
from ocirt.process import oom as _oom
from ocirt.process import personality as _personality
from ocirt.process import rlimits as _rlimits
from ocirt.process import sched as _sched
from ocirt.process import user as _user
from ocirt.security import _procfs
from ocirt.security import lsm as _lsm

# ocirt.security.seccomp (the largest of these) is imported by prepare() only when the config
# has a filter; apply_seccomp() runs only then, in a process forked after that import.

__all__ = ["Prepared", "prepare", "apply_early", "apply_final_affinity", "apply_user",
           "apply_caps", "apply_seccomp", "send_seccomp_listener", "send_listener"]


class Prepared:
    """Validated, compiled process security settings. Plain data: survives fork and pickle."""

    __slots__ = ("source", "caps", "last_cap", "rlimits", "oom_score_adj", "ioprio", "sched",
                 "personality", "apparmor", "selinux", "user", "no_new_privs", "seccomp",
                 "mempolicy", "cpus_initial", "cpus_final", "warnings", "_keep_admin",
                 "_granted")

    def __init__(self) -> None:
        self.source = "config.json"
        self.caps: dict[str, int] | None = None   # {bounding, effective, ...: bitmask}
        self.last_cap = 40
        self.rlimits: list = []
        self.oom_score_adj: int | None = None
        self.ioprio: int | None = None
        self.sched: tuple | None = None
        self.personality: int | None = None
        self.apparmor = ""
        self.selinux = ""
        self.user: tuple = (0, 0, (), None)
        self.no_new_privs = False
        self.seccomp = None                      # ocirt.security.seccomp.Filter
        self.mempolicy: tuple | None = None      # (mode | flags, nodes) for set_mempolicy
        self.cpus_initial: set[int] | None = None  # execCPUAffinity, for `exec` only
        self.cpus_final: set[int] | None = None
        self.warnings: list[str] = []            # for the caller to log (runc: logrus.Warn)
        self._keep_admin = False
        self._granted: tuple[int, int, int] = (0, 0, 0)   # (eff, prm, inh) set by apply_caps

    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, st):
        for k, v in st.items():
            setattr(self, k, v)


def prepare(process: dict, linux: dict | None, *, source: str = "config.json",
            seccomp_cache: str | None = None) -> Prepared:
    """Parse, validate and compile. `seccomp_cache`: optional directory (owned by us, not
    group/other-writable, e.g. <runtime root>/seccomp-cache) to reuse compiled filters: a
    Docker-sized profile costs 10-40 ms in libseccomp, a cache hit < 1 ms."""
    if not isinstance(process, dict):
        raise ConfigError("process", "must be an object", source)
    linux = linux or {}
    if not isinstance(linux, dict):
        raise ConfigError("linux", "must be an object", source)
    p = Prepared()
    p.source = source
    p.last_cap = _caps.last_cap()
    p.caps = _caps.parse(process.get("capabilities"), source=source, kernel_last=p.last_cap,
                         warnings=p.warnings)
    p.rlimits = _rlimits.parse(process.get("rlimits"), source=source)
    p.oom_score_adj = _oom.parse(process.get("oomScoreAdj"), source=source)
    p.ioprio = _ioprio.parse(process.get("ioPriority"), source=source)
    p.sched = _sched.parse(process.get("scheduler"), source=source)
    p.personality = _personality.parse(linux.get("personality"), source=source)
    p.user = _user.parse(process.get("user"), source=source)
    nnp = process.get("noNewPrivileges", False)
    if not isinstance(nnp, bool):
        raise ConfigError("process.noNewPrivileges", "must be a boolean", source)
    p.no_new_privs = nnp
    p.apparmor, p.selinux = _lsm.parse(process.get("apparmorProfile"),
                                       process.get("selinuxLabel"), source=source)
    if linux.get("memoryPolicy"):
        from ocirt.process import mempolicy as _mempolicy
        p.mempolicy = _mempolicy.parse(linux["memoryPolicy"], source=source)
    if process.get("execCPUAffinity"):
        from ocirt.process import affinity as _affinity
        p.cpus_initial, p.cpus_final = _affinity.parse(process["execCPUAffinity"], source=source)
    if linux.get("seccomp") is not None:
        from ocirt.security import seccomp as _seccomp
        p.seccomp = _seccomp.compile(linux["seccomp"], source=source, cache_dir=seccomp_cache)
    return p


def apply_early(p: Prepared) -> None:
    """Still root, before setuid: oom_score_adj, LSM exec labels, rlimits, ioprio, scheduler,
    personality, bounding set."""
    if p.oom_score_adj is not None or p.apparmor or p.selinux:
        with _procfs.ProcRoot() as proc:
            if p.oom_score_adj is not None:
                _oom.apply(p.oom_score_adj, proc)
            _lsm.apply_exec_labels(p.apparmor, p.selinux, proc)
    _rlimits.apply(p.rlimits)
    if p.ioprio is not None:
        _ioprio.apply(p.ioprio)
    if p.sched is not None:
        _sched.apply(p.sched)
    if p.personality is not None:
        _personality.apply(p.personality)
    if p.mempolicy is not None:
        from ocirt.process import mempolicy as _mempolicy   # imported by prepare()
        _mempolicy.apply(p.mempolicy)
    if p.caps is not None:
        _warn_missing(p, "bounding", p.caps["bounding"], _caps.bounding(),
                      "not in the runtime's bounding set")
        _caps.drop_bounding(p.caps["bounding"], p.last_cap)


def apply_final_affinity(p: Prepared) -> None:
    """execCPUAffinity.final, for an exec'd process now in the container's cgroup."""
    if p.cpus_final is not None:
        from ocirt.process import affinity as _affinity   # imported by prepare()
        _affinity.apply(0, p.cpus_final, "final")


def apply_user(p: Prepared, user: dict | None = None) -> None:
    """setgroups(additionalGids), setresgid, setresuid keeping permitted caps, umask.
    `user` defaults to the process.user given to prepare()."""
    u = p.user if user is None else _user.parse(user, source=p.source)
    _user.apply(*u)


def _warn_missing(p: Prepared, what: str, wanted: int, granted: int, why: str) -> None:
    if wanted & ~granted:
        p.warnings.append(f"cannot grant {what} capabilities "
                          f"{', '.join(_caps.names(wanted & ~granted))}: {why}")


def apply_caps(p: Prepared) -> None:
    """capset effective/permitted/inheritable as configured, raise ambient, then no_new_privs.

    runtime-spec: capabilities that cannot be granted are logged as warnings and the runtime
    SHOULD NOT fail. So each set is intersected with what the kernel will allow right now (the
    init's permitted set, the bounding set for inheritable, permitted & inheritable for
    ambient) and whatever is left out is added to p.warnings, which the init must relay to the
    runtime's log. runc 1.1.5 fails with "unable to apply caps: operation not permitted"
    instead (e.g. CAP_SYS_RESOURCE on a host whose root lacks it)."""
    if p.caps is not None:
        c = p.caps
        cur_eff, cur_prm, cur_inh = _caps.capget()
        cur_bnd = _caps.bounding()
        prm = c["permitted"] & cur_prm
        _warn_missing(p, "permitted", c["permitted"], prm, "not held by the runtime")
        eff = c["effective"] & prm
        _warn_missing(p, "effective", c["effective"], eff, "not permitted")
        inh_ok = cur_inh | cur_bnd
        if not cur_eff >> _caps.CAP_SETPCAP & 1:
            inh_ok &= cur_inh | cur_prm
        inh = c["inheritable"] & inh_ok
        _warn_missing(p, "inheritable", c["inheritable"], inh, "not in the bounding set")
        amb = c["ambient"] & prm & inh
        _warn_missing(p, "ambient", c["ambient"], amb, "ambient capabilities must also be "
                      "permitted and inheritable")
        p._granted = (eff, prm, inh)
        bit = 1 << _caps.CAP_SYS_ADMIN
        p._keep_admin = False
        if p.seccomp is not None and not p.no_new_privs and not prm & bit and cur_prm & bit:
            # seccomp(2) without no_new_privs needs CAP_SYS_ADMIN: keep it until the filter is
            # loaded (it is already out of the bounding set, so it cannot survive execve).
            p._keep_admin = True
            eff, prm = eff | bit, prm | bit
        try:
            _caps.capset(eff, prm, inh)
        except OSError as e:
            raise SetupError(f"setting capabilities: {e.strerror}") from None
        _caps.set_ambient(amb, p.last_cap)
    if p.no_new_privs:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)


def apply_seccomp(p: Prepared) -> int | None:
    """Load the prebuilt filter; returns the listener fd (O_CLOEXEC) for NOTIFY profiles."""
    if p.seccomp is None:
        return None
    from ocirt.security import seccomp as _seccomp     # already imported by prepare()
    fd = _seccomp.load(p.seccomp)
    if p._keep_admin:
        try:
            _caps.capset(*p._granted)
        except OSError as e:
            if fd is not None:
                os.close(fd)
            raise SetupError("dropping CAP_SYS_ADMIN after loading the seccomp filter: "
                             f"capset: {e.strerror} (does the profile block capset?)") from None
        p._keep_admin = False
    return fd


def send_listener(listener_path: str, metadata: str, fd: int, state: dict) -> None:
    """For the runtime parent (host mount namespace): deliver the listener fd to the agent."""
    from ocirt.security import notify
    notify.send_listener(listener_path, metadata, fd, state)


def send_seccomp_listener(p: Prepared, fd: int, state: dict) -> None:
    if p.seccomp is None or not p.seccomp.notify:
        raise SetupError("no seccomp listener configured")
    send_listener(p.seccomp.listener_path, p.seccomp.listener_metadata, fd, state)
