"""The container's cgroup as a transient systemd unit (--systemd-cgroup), as runc's systemd
driver makes it.

create: the unit is started over D-Bus once the init's pid is known (StartTransientUnit with
PIDs=[init], Delegate=yes and the resources systemd has properties for), then every resource
is written to the unit's cgroup by the cgroupfs code. update: SetUnitProperties, then cgroupfs.
delete: kill, StopUnit, ResetFailedUnit, and remove what is left of the directories. Everything
else (state, ps, pause, events, exec --cgroup) works on the unit's cgroup directory as with
cgroupfs: the saved state records the directories and the unit's name.
"""

from __future__ import annotations

import posix

from ocirt.cgroups import detect
from ocirt.cgroups.detect import UNIFIED, V2
from ocirt.cgroups.manager import SIGKILL, STATE_VERSION, Manager, _remove_tree, _wait
from ocirt.cgroups.systemd import units
from ocirt.errors import CgroupError
from ocirt.log import logger

DRIVER = "systemd"

_UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"
_NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"


def for_container(container_id: str, cgroups_path: str | None, *, rootless: bool = False,
                  annotations: dict | None = None) -> "SystemdManager":
    """No side effects: names the unit and its expected directories."""
    host = detect.host()
    if host.mode != V2 or host.unified is None:
        # On v1, systemd rewrites a delegated unit's devices cgroup whenever it re-applies
        # the unit (devices.allow "a" without DeviceAllow=): the device rules would not hold.
        raise CgroupError(f"the systemd cgroup driver needs a pure cgroup v2 host (this one "
                          f"is {host.mode}); run without --systemd-cgroup to use cgroupfs")
    unit = units.parse(container_id, cgroups_path, user=rootless)
    from ocirt.cgroups.systemd import annotations as extra
    extra_props = extra.properties(annotations)
    from ocirt.cgroups.systemd import bus
    bus.load_client()           # a missing D-Bus library is reported before anything exists
    mnt = host.unified.mountpoint
    m = SystemdManager(container_id=container_id, cgroups_path=cgroups_path, mode=host.mode,
                       paths={UNIFIED: mnt + unit.cgroup}, mounts={UNIFIED: mnt},
                       v2_controllers=host.v2_controllers, rootless=rootless,
                       unit=unit.name, slice_=unit.slice, user=rootless)
    m.extra_properties = extra_props
    return m


def from_state(d: dict) -> "SystemdManager":
    return SystemdManager(container_id=d["id"], cgroups_path=d.get("cgroups_path"),
                          mode=d["mode"], paths=dict(d["paths"]), mounts=dict(d["mounts"]),
                          v2_controllers=frozenset(d.get("v2_controllers", ())),
                          rootless=bool(d.get("rootless")), created=list(d.get("created", ())),
                          unit=d["unit"], slice_=d["slice"], user=bool(d.get("user")),
                          started=bool(d.get("started")))


class SystemdManager(Manager):
    def __init__(self, *, unit: str, slice_: str, user: bool, started: bool = False,
                 **kw) -> None:
        super().__init__(**kw)
        self.unit = unit
        self.slice = slice_
        self.user = user                # the user's manager rather than PID 1
        # Whether this container started the unit: until it has, a unit of that name (and
        # its cgroup) belongs to someone else, and destroy must leave it alone.
        self.started = started
        self._pending: dict | None = None   # resources to apply once the unit exists
        self.extra_properties: list = []    # from org.systemd.property.* annotations

    def to_state(self) -> dict:
        d = super().to_state()
        d.update(driver=DRIVER, unit=self.unit, slice=self.slice, user=self.user,
                 started=self.started)
        return d

    def _bus(self):
        from ocirt.cgroups.systemd import bus
        return bus.Manager(user=self.user)

    # --- lifecycle --------------------------------------------------------------------

    def create(self, resources: dict | None = None, *, validated: bool = False) -> None:
        """A scope needs a process: the unit is started by add() with the init's pid."""
        if not validated:
            self.validate(resources)
        self._pending = dict(resources or {})
        self.created = []

    def add(self, pid: int, paths: dict[str, str] | None = None, *,
            init_pid: int = 0) -> None:
        if self._pending is None or paths is not None:
            return super().add(pid, paths, init_pid=init_pid)
        resources, self._pending = self._pending, None
        self._start(pid, resources)

    def _start(self, pid: int, resources: dict) -> None:
        from ocirt.cgroups.systemd.bus import BusError
        unit = units.Unit(self.unit, self.slice, "")
        with self._bus() as m:
            version = m.version()
            props = units.start_properties(unit, self.container_id,
                                           None if unit.is_slice else pid, resources,
                                           version)
            self._start_unit(m, props + self.extra_properties)
            self.started = True
            iface = "org.freedesktop.systemd1." + ("Slice" if unit.is_slice else "Scope")
            try:
                cgroup = str(m.unit_property(self.unit, iface, "ControlGroup"))
            except BusError as e:
                raise CgroupError(f"systemd unit {self.unit}: cannot read its cgroup: {e}") \
                    from None
        self._locate(cgroup)
        created: list[str] = []
        try:
            # A slice unit holds no process of its own: the init joins its cgroup through
            # cgroupfs, as runc's driver does.
            for d, mnt in self._dirs():
                self._mkdirs(d, mnt, created)
            self.created = created
            super().add(pid)
            self._apply(resources, update=False)
        except BaseException:
            self.created = created
            raise

    def _start_unit(self, m, props: list) -> None:
        from ocirt.cgroups.systemd.bus import BusError
        for attempt in (1, 2):
            try:
                result = m.run_job("StartTransientUnit", "ssa(sv)a(sa(sv))", self.unit,
                                   "replace", props, [])
            except BusError as e:
                if e.name == _UNIT_EXISTS and attempt == 1:
                    # Perhaps a failed unit of a container gone: let systemd drop it, once.
                    self._reset_failed(m)
                    continue
                if e.name == _UNIT_EXISTS:
                    raise CgroupError(f"systemd unit {self.unit} already exists "
                                      f"(linux.cgroupsPath names a unit in use)") from None
                raise CgroupError(f"cannot start systemd unit {self.unit}: {e}") from None
            if result != "done":
                self._reset_failed(m)
                raise CgroupError(f"systemd could not start unit {self.unit}: its job ended "
                                  f"with {result!r}")
            logger.debug("systemd: started %s", self.unit)
            return

    def _reset_failed(self, m) -> None:
        from ocirt.cgroups.systemd.bus import BusError
        try:
            m.call("ResetFailedUnit", "s", self.unit)
        except BusError:
            pass                        # not loaded, or not failed: nothing to drop

    def _locate(self, cgroup: str) -> None:
        """The unit's cgroup as systemd reports it -> our directory (the user manager's units
        sit below its own cgroup, which only it knows)."""
        from ocirt.cgroups.paths import _under_mount
        h = detect.host().unified
        self.paths[UNIFIED] = _under_mount(h.mountpoint, h.root, cgroup)

    def update(self, resources: dict) -> None:
        self.validate(resources, update=True)
        with self._bus() as m:
            props = units.resource_properties(resources, m.version())
            if props:
                from ocirt.cgroups.systemd.bus import BusError
                try:
                    m.call("SetUnitProperties", "sba(sv)", self.unit, True, props)
                except BusError as e:
                    raise CgroupError(f"unable to set properties of systemd unit "
                                      f"{self.unit}: {e}") from None
        self._apply(resources, update=True)

    # --- removal ----------------------------------------------------------------------

    def destroy(self) -> None:
        if not self.started:
            # A create that failed before its unit existed (perhaps because the name is
            # taken): nothing here is ours. A create killed after starting it left an init
            # that died with it, and systemd drops a scope once it is empty.
            return
        if self.pids():
            self.kill_all(SIGKILL)
            _wait(lambda: not self.pids(), 5.0)
        try:
            self._stop_unit()
        finally:
            # systemd removes the unit's cgroup (sub-cgroups too) when it stops; whatever is
            # left (the bus unreachable, v1 hierarchies it does not manage) goes here.
            leaves = [d for d, _ in self._dirs()]
            for d in leaves:
                _remove_tree(d)
            for d in reversed(self.created):
                if d not in leaves:
                    try:
                        posix.rmdir(d)
                    except OSError:
                        pass

    def _stop_unit(self) -> None:
        from ocirt.cgroups.systemd.bus import BusError
        with self._bus() as m:
            try:
                result = m.run_job("StopUnit", "ss", self.unit, "replace")
            except BusError as e:
                if e.name != _NO_SUCH_UNIT:     # gone already, with its last process
                    raise CgroupError(f"cannot stop systemd unit {self.unit}: {e}") from None
            else:
                if result != "done":
                    logger.warning(f"stopping systemd unit {self.unit}: its job ended with "
                                   f"{result!r}")
            self._reset_failed(m)


__all__ = ["SystemdManager", "for_container", "from_state", "STATE_VERSION"]
