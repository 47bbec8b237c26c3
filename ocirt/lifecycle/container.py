"""Loading a container's saved state and deriving its live status."""

from __future__ import annotations

from ocirt.state import machine
from ocirt.state.store import Store


class Container:
    def __init__(self, store: Store, cid: str, state: dict) -> None:
        self.store = store
        self.id = cid
        self.state = state

    @classmethod
    def load(cls, store: Store, cid: str) -> "Container":
        return cls(store, cid, store.load(cid))

    @property
    def dir(self) -> str:
        return self.store.dir(self.id)

    @property
    def config(self) -> dict:
        return self.state.get("config") or {}

    def namespace_types(self) -> set[str]:
        """The namespace types of its config, created or joined."""
        return {ns.get("type") for ns in (self.config.get("linux") or {}).get("namespaces") or ()}

    @property
    def pid(self) -> int:
        return int(self.state.get("pid") or 0)

    def status(self) -> str:
        return machine.derive(self.state, self.dir)

    def cgroup(self):
        cg = self.state.get("cgroup")
        if not cg:
            return None
        from ocirt.cgroups import manager
        return manager.from_state(cg)

    def oci_state(self, status: str | None = None) -> dict:
        """runc's `state` output: the OCI state plus rootfs, created and owner."""
        st = status or self.status()
        out = {
            "ociVersion": self.state.get("ociVersion"),
            "id": self.id,
            "pid": self.pid if st != machine.STOPPED else 0,
            "status": st,
            "bundle": self.state.get("bundle"),
            "rootfs": self.state.get("rootfs"),
            "created": self.state.get("created"),
            "owner": self.state.get("owner", ""),
        }
        if self.state.get("annotations"):
            out["annotations"] = self.state["annotations"]
        return out

    def hook_state(self, status: str) -> dict:
        from ocirt import hooks
        return hooks.oci_state(self.id, status, self.pid if status != machine.STOPPED else 0,
                               self.state.get("bundle", ""), self.state.get("annotations"))
