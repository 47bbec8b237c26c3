"""The systemd cgroup driver (--systemd-cgroup): a transient unit per container, started over
D-Bus. Imported only when that driver is asked for, or named in a container's saved state."""
