"""The container's cgroup across every hierarchy of the host: v1, v2, or hybrid.

One Manager handles all three modes, because on a hybrid host each controller has to go to the
hierarchy that has it (here hugetlb lives on cgroup2 while everything else is v1); a controller
is "routed" to v1 when a v1 hierarchy has it, else to the unified hierarchy when that offers it.

Ownership rule: the container's own directories (its leaf in each hierarchy) are removed by
destroy even when they existed before create, as runc removes its cgroup paths: create refused
them unless empty, so nothing else lives there. Above the leaves, `created` lists what this
container made (parents first): a parent that already existed (a pod's cgroup, /ocirt shared by
every container) is never removed by a container that did not create it, and one it did create
is removed only once empty.
"""

from __future__ import annotations

import errno
import posix
import time

from ocirt import fspath
from ocirt.cgroups import detect, fs
from ocirt.cgroups.detect import UNIFIED, V1, V2, Host
from ocirt.errors import CgroupError, ConfigError
from ocirt.log import logger

STATE_VERSION = 1

# Which hierarchy answers "which processes are in the container" on v1 (runc uses devices).
_PRIMARY = ("pids", "freezer", "devices", "memory", "cpu", "cpuacct", "cpuset", "blkio",
            "name=systemd", UNIFIED)

_NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)

# Linux's number; importing `signal` would pull in enum (~7 ms) on the create path.
SIGKILL = 9


def for_container(container_id: str, cgroups_path: str | None, *, systemd: bool = False,
                  rootless: bool = False, annotations: dict | None = None) -> "Manager":
    """No side effects: works out the directories, creates nothing. `annotations`: config.json's,
    for the systemd driver's extra unit properties."""
    if systemd:
        if not detect.systemd_running():
            raise CgroupError("systemd cgroup manager requested but systemd is not running")
        from ocirt.cgroups.systemd import driver
        return driver.for_container(container_id, cgroups_path, rootless=rootless,
                                    annotations=annotations)
    return Manager.for_host(detect.host(), container_id, cgroups_path, rootless=rootless)


def from_state(d: dict) -> "Manager":
    if d.get("version") != STATE_VERSION:
        raise CgroupError(f"unknown cgroup state version {d.get('version')!r}")
    if d.get("driver") == "systemd":
        from ocirt.cgroups.systemd import driver
        return driver.from_state(d)
    return Manager(container_id=d["id"], cgroups_path=d.get("cgroups_path"), mode=d["mode"],
                   paths=dict(d["paths"]), mounts=dict(d["mounts"]),
                   v2_controllers=frozenset(d.get("v2_controllers", ())),
                   rootless=bool(d.get("rootless")), created=list(d.get("created", ())))


class Manager:
    def __init__(self, *, container_id: str, cgroups_path: str | None, mode: str,
                 paths: dict[str, str], mounts: dict[str, str],
                 v2_controllers: frozenset[str], rootless: bool = False,
                 created: list[str] | None = None) -> None:
        self.container_id = container_id
        self.cgroups_path = cgroups_path
        self.mode = mode
        self.paths = paths                  # controller (v1 name, "name=..", "") -> dir
        self.mounts = mounts                # same keys -> mountpoint of that hierarchy
        self.v2_controllers = v2_controllers
        self.rootless = rootless
        self.created = created or []

    @classmethod
    def for_host(cls, host: Host, container_id: str, cgroups_path: str | None, *,
                 rootless: bool = False) -> "Manager":
        from ocirt.cgroups.paths import resolve     # only where a Manager is made anew
        paths = resolve(host, container_id, cgroups_path)
        mounts = {c: h.mountpoint for c, h in host.v1.items()}
        if host.unified is not None:
            mounts[UNIFIED] = host.unified.mountpoint
        v2c = host.v2_controllers if host.unified is not None else frozenset()
        return cls(container_id=container_id, cgroups_path=cgroups_path, mode=host.mode,
                   paths=paths, mounts=mounts, v2_controllers=v2c, rootless=rootless)

    # --- persistence ------------------------------------------------------------------

    def to_state(self) -> dict:
        return {"version": STATE_VERSION, "id": self.container_id,
                "cgroups_path": self.cgroups_path, "mode": self.mode, "paths": dict(self.paths),
                "mounts": dict(self.mounts), "v2_controllers": sorted(self.v2_controllers),
                "rootless": self.rootless, "created": list(self.created)}

    # --- routing ----------------------------------------------------------------------

    def route(self, controller: str) -> tuple[int, str] | None:
        """(1 or 2, directory) for a controller name (v1 spelling; "io" is accepted for
        blkio), or None when no hierarchy of ours has it."""
        if controller in self.paths and controller != UNIFIED:
            return 1, self.paths[controller]
        if UNIFIED in self.paths:
            v2name = "io" if controller == "blkio" else controller
            if v2name in self.v2_controllers:
                return 2, self.paths[UNIFIED]
        return None

    def _route_mod(self, mod) -> tuple[int, str] | None:
        if mod.V1 and mod.V1 in self.paths:
            return 1, self.paths[mod.V1]
        if mod.V2 is not None and UNIFIED in self.paths and (
                mod.V2 == "" or mod.V2 in self.v2_controllers):
            return 2, self.paths[UNIFIED]
        return None

    def _dirs(self) -> list[tuple[str, str]]:
        """Distinct (dir, mountpoint), each once even when hierarchies are co-mounted."""
        seen: dict[str, str] = {}
        for key, d in self.paths.items():
            seen.setdefault(d, self.mounts[key])
        return list(seen.items())

    # --- validation and resources ---------------------------------------------------------

    def validate(self, resources: dict | None, *, update: bool = False) -> None:
        from ocirt.cgroups.controllers import Ctx, wanted

        if resources is None:
            return
        ctx = Ctx(source="resources" if update else "config.json", update=update,
                  v2_controllers=self.v2_controllers)
        if not isinstance(resources, dict):
            raise ConfigError("linux.resources", "must be an object", ctx.source)
        for mod in wanted(resources):
            r = self._route_mod(mod)
            if r is None:
                if mod.V2 == "" and mod.V1 is None:
                    mod.validate(resources, 1, ctx)     # says: needs cgroup v2
                raise ConfigError(f"linux.resources.{mod.KEYS[0]}",
                                  f"the {mod.V1 or mod.V2} cgroup controller is not available "
                                  "on this host", ctx.source)
            mod.validate(resources, r[0], ctx)

    def _apply(self, resources: dict | None, update: bool) -> None:
        from ocirt.cgroups.controllers import Ctx, wanted

        ctx = Ctx(source="resources" if update else "config.json", update=update,
                  v2_controllers=self.v2_controllers)
        for mod in wanted(resources):
            r = self._route_mod(mod)
            if r is None:
                raise CgroupError(f"cannot set {mod.V1 or mod.V2} limit: container could not "
                                  "join or create cgroup")
            mod.apply(r[1], resources, r[0], ctx)

    # --- lifecycle --------------------------------------------------------------------

    def create(self, resources: dict | None = None, *, validated: bool = False) -> None:
        """Make the container's cgroups and apply `resources` (validated first unless the
        caller already did, as create does before anything exists)."""
        if not self.paths:
            raise CgroupError("no cgroup hierarchy is mounted on this host")
        if not validated:
            self.validate(resources)
        created: list[str] = []
        logger.debug("cgroup: creating %s", self.paths)
        try:
            self._refuse_busy()
            denied: list[tuple[str, OSError]] = []
            for d, mnt in self._dirs():
                try:
                    self._mkdirs(d, mnt, created)
                except OSError as e:
                    if self.rootless and e.errno in _NO_PERMISSION:
                        # Rootless in a hierarchy not delegated to the user: go without it;
                        # any limit that needed it fails below with a clear message.
                        denied.append((d, e))
                        continue
                    raise CgroupError(f"cannot create cgroup {d}: {e.strerror}") from None
            if denied and len(denied) == len(self._dirs()) and self.cgroups_path:
                # A cgroupsPath the user named must be theirs somewhere, as in runc.
                d, e = denied[0]
                raise CgroupError(f"cannot create cgroup {d}: {e.strerror} (a rootless "
                                  "container needs a cgroup delegated to its user)")
            for d, _e in denied:
                for k in [k for k, v in self.paths.items() if v == d]:
                    del self.paths[k]
            self._prepare(created)
            self.created = created
            self._apply(resources, update=False)
        except BaseException:
            self._rollback(created)
            self.created = []
            raise

    def _refuse_busy(self) -> None:
        """runc's rule: an existing cgroup may be reused only if empty and not frozen."""
        for d, _ in self._dirs():
            if not fspath.isdir(d):
                continue
            n = len(self._procs_in(d))
            if n:
                raise CgroupError(f"container's cgroup is not empty: {n} process(es) found")
        if self.is_frozen():
            raise CgroupError("container's cgroup unexpectedly frozen")

    @staticmethod
    def _mkdirs(d: str, mnt: str, created: list[str]) -> None:
        import os
        rel = os.path.relpath(d, mnt)
        if rel.startswith(".."):
            raise CgroupError(f"cgroup {d} is outside its hierarchy {mnt}")
        parts = [] if rel == "." else rel.split("/")
        # A concurrent destroy of another container may remove a shared parent between our
        # mkdirs (ENOENT): start over from the top a few times.
        for _ in range(5):
            cur = mnt
            try:
                for p in parts:
                    cur = os.path.join(cur, p)
                    try:
                        os.mkdir(cur, 0o755)
                        created.append(cur)
                    except FileExistsError:
                        pass
                return
            except FileNotFoundError:
                continue
        raise CgroupError(f"cannot create cgroup {d}: its parent keeps disappearing")

    def _prepare(self, created: list[str]) -> None:
        # v1 cpuset: cpus/mems must be filled in before any task can join.
        if "cpuset" in self.paths:
            from ocirt.cgroups.controllers import cpuset
            cpuset.prepare_v1(self.paths["cpuset"], self.mounts["cpuset"])
        # v2: delegate the controllers down to the container's cgroup, as runc does: each
        # ancestor enables in cgroup.subtree_control what it has in cgroup.controllers.
        if UNIFIED in self.paths:
            d, mnt = self.paths[UNIFIED], self.mounts[UNIFIED]
            import os
            chain, cur = [], os.path.dirname(d)
            while len(cur) >= len(mnt):
                chain.append(cur)
                if cur == mnt:
                    break
                cur = os.path.dirname(cur)
            for anc in reversed(chain):
                _enable_subtree(anc)

    def _rollback(self, created: list[str]) -> None:
        for d in reversed(created):
            try:
                posix.rmdir(d)
            except OSError:
                pass

    def add(self, pid: int, paths: dict[str, str] | None = None, *,
            init_pid: int = 0) -> None:
        """Move `pid` into the container's cgroups, or into `paths` (sub-cgroups of them, as
        paths.sub_paths makes for exec --cgroup). `init_pid`: the container's init, whose
        cgroup v2 directory is joined instead when the container's own refuses (see below)."""
        dirs = dict.fromkeys((paths or self.paths).values())   # co-mounted hierarchies once
        for d in dirs:
            try:
                fs.write(d, "cgroup.procs", pid)
            except CgroupError as e:
                if self.rootless and getattr(e, "errno", None) in _NO_PERMISSION:
                    continue
                if (getattr(e, "errno", None) == errno.EBUSY and init_pid
                        and d == self.paths.get(UNIFIED)
                        and self._join_init_cgroup(pid, init_pid)):
                    continue
                # runc's words, which scripts match (its exec.bats): "adding pid N to
                # cgroups: ... DIR/cgroup.procs: no such file or directory".
                why = posix.strerror(e.errno).lower() if getattr(e, "errno", None) else e.message
                raise CgroupError(f"adding pid {pid} to cgroups: "
                                  f"{d}/cgroup.procs: {why}") from None
        from ocirt.cgroups import warmup      # imported by the verbs that place processes
        warmup.stop()

    def _join_init_cgroup(self, pid: int, init_pid: int) -> bool:
        """cgroup v2 refuses processes in a cgroup that has domain controllers enabled for
        its children ("no internal processes"): a container that moved its init into a
        sub-cgroup of its own and enabled controllers there (systemd as the init does) has
        no room left at the top. Join the init's cgroup then, as runc does."""
        try:
            with open(f"/proc/{init_pid}/cgroup") as f:
                own = detect.own_cgroups(f.read()).get(UNIFIED)
        except OSError:
            return False
        if own is None:
            return False
        d = self.mounts[UNIFIED].rstrip("/") + own
        top = self.paths[UNIFIED]
        if not d.startswith(top.rstrip("/") + "/"):
            return False        # not below the container's cgroup: nothing of ours
        logger.debug("cgroup: %s refuses pid %d (domain controllers on); joining the init's "
                     "cgroup %s", top, pid, d)
        try:
            fs.write(d, "cgroup.procs", pid)
        except CgroupError:
            return False
        return True

    def update(self, resources: dict) -> None:
        self.validate(resources, update=True)
        self._apply(resources, update=True)

    # --- processes --------------------------------------------------------------------

    def _primary(self) -> str | None:
        if self.mode == V2:
            return self.paths.get(UNIFIED)
        for k in _PRIMARY:
            if k in self.paths:
                return self.paths[k]
        return None

    @staticmethod
    def _procs_in(d: str) -> list[int]:
        out: list[int] = []
        for top in fspath.walk_dirs(d):
            text = fs.read_or_none(top, "cgroup.procs")
            if text:
                out.extend(int(x) for x in text.split())
        return out

    def listed_pids(self) -> list[int]:
        """pids() for `ps`: a rootless container without a cgroup cannot say."""
        if self.rootless and not self.paths:
            raise CgroupError("cannot list processes: cgroups not configured for container "
                              "(a rootless container without a delegated cgroup)")
        return self.pids()

    def pids(self) -> list[int]:
        d = self._primary()
        if d is None or not fspath.isdir(d):
            return []
        return sorted(set(self._procs_in(d)))

    def _freezer(self):
        """(freeze, thaw, is_frozen, directory, version) of this container's freezer, or
        None."""
        from ocirt.cgroups.controllers import freezer
        r = freezer.route(self.paths)
        if r is None:
            return None
        if r[0] == 1:
            return freezer.freeze_v1, freezer.thaw_v1, freezer.is_frozen_v1, r[1], 1
        return freezer.freeze_v2, freezer.thaw_v2, freezer.is_frozen_v2, r[1], 2

    def _no_cgroup(self, what: str) -> CgroupError:
        if self.rootless:
            # runc's text: a rootless container that could create no cgroup of its own.
            return CgroupError("cannot toggle freezer: cgroups not configured for container")
        return CgroupError(f"cannot {what}: no freezer cgroup on this host")

    def freeze(self) -> None:
        f = self._freezer()
        if f is None:
            raise self._no_cgroup("pause")
        f[0](f[3])

    def thaw(self) -> None:
        f = self._freezer()
        if f is None:
            raise self._no_cgroup("resume")
        f[1](f[3])

    def is_frozen(self) -> bool:
        from ocirt.cgroups.controllers import freezer
        return freezer.is_frozen_recorded(self.paths)

    def kill_all(self, sig: int) -> None:
        if self.mode == V2 and sig == SIGKILL:
            d = self.paths.get(UNIFIED)
            if d and fs.exists(d, "cgroup.kill"):
                # Atomic against forks, unlike any walk over pids.
                try:
                    fs.write(d, "cgroup.kill", 1)
                    return
                except CgroupError:
                    pass
        f = self._freezer()
        froze = False
        if f is not None and fspath.isdir(f[3]):
            was_frozen = f[2](f[3])
            # Frozen, the set cannot grow under us while we signal it.
            try:
                if not was_frozen:
                    f[0](f[3])
                    froze = True
            except CgroupError:
                pass
        try:
            for pid in self.pids():
                try:
                    posix.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            # Thaw what we froze. SIGKILL also thaws a paused container, and any of its
            # sub-cgroups frozen on their own, or their processes could not die (runc
            # always thaws here).
            try:
                if f is not None and sig == SIGKILL and fspath.isdir(f[3]):
                    from ocirt.cgroups.controllers import freezer
                    freezer.thaw_tree(f[4], f[3])
                elif f is not None and froze:
                    f[1](f[3])
            except CgroupError:
                pass

    # --- observation ------------------------------------------------------------------

    def stats(self) -> dict:
        from ocirt.cgroups import stats
        acct = self.paths.get("cpuacct")
        return stats.collect(self.route, acct)

    def oom_events(self) -> int:
        r = self.route("memory")
        if r is None:
            return 0
        from ocirt.cgroups.controllers import memory
        return memory.oom_kills(r[1], r[0])

    # --- removal ----------------------------------------------------------------------

    def destroy(self) -> None:
        leaves = [d for d, _ in self._dirs()]
        if self.pids():
            self.kill_all(SIGKILL)
            _wait(lambda: not self.pids(), 5.0)
        for leaf in leaves:
            _remove_tree(leaf)
        leafset = set(leaves)
        for d in reversed(self.created):
            if d in leafset:
                continue
            try:
                posix.rmdir(d)          # only if empty: another container may live there now
            except OSError:
                pass
        if not self.cgroups_path:
            # The default parent is ocirt's own; whoever empties it removes it, so it does
            # not linger because its creator was not the last to go (a concurrent create
            # copes: _mkdirs starts over on ENOENT).
            for d, _ in self._dirs():
                try:
                    posix.rmdir(fspath.dirname(d))
                except OSError:
                    pass


def _enable_subtree(d: str) -> None:
    have = (fs.read_or_none(d, "cgroup.controllers") or "").split()
    on = set((fs.read_or_none(d, "cgroup.subtree_control") or "").split())
    want = [c for c in have if c not in on]
    if not want:
        return
    try:
        fs.write(d, "cgroup.subtree_control", " ".join("+" + c for c in want))
    except CgroupError:
        # One refused controller (or a cgroup with processes) must not block the others;
        # whatever stays missing fails clearly when a limit needs it.
        for c in want:
            try:
                fs.write(d, "cgroup.subtree_control", "+" + c)
            except CgroupError:
                pass


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def _remove_tree(top: str) -> None:
    """rmdir `top` and any sub-cgroups, deepest first. EBUSY means tasks are still exiting
    (after a kill they linger briefly as zombies), so retry for a while."""
    try:
        posix.rmdir(top)       # the common case, a leaf whose tasks are gone: no walk
        return
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise CgroupError(f"cannot remove cgroup {top}: {e.strerror}") from None
    dirs = fspath.walk_dirs(top)
    for d in reversed(dirs):
        deadline = time.monotonic() + 5.0
        # A killed init lingers until its parent (often not us) reaps it: poll often at first.
        delay = 0.001
        while True:
            try:
                posix.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove cgroup {d}: {e.strerror}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)


__all__ = ["Manager", "for_container", "from_state", "V1", "V2"]
