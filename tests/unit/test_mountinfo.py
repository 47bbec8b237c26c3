"""Parsing /proc/*/mountinfo lines."""

from __future__ import annotations

from ocirt.linux import mountinfo

LINES = (
    "36 35 98:0 /mnt1 /mnt\\040with\\011tab rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
    "25 1 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 propagate_from:2 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "26 1 0:23 / /proc rw - proc proc rw\n"
    "broken line without separator\n"
)


def test_fields_are_read_whatever_the_number_of_optional_fields():
    e = mountinfo.entries(LINES)
    assert [(x.mountpoint, x.fstype, x.super_options) for x in e[1:]] == [
        ("/sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"),
        ("/proc", "proc", "rw"),
    ]


def test_escaped_paths_are_decoded():
    e = mountinfo.entries(LINES)[0]
    assert (e.root, e.mountpoint, e.source) == ("/mnt1", "/mnt with\ttab", "/dev/root")


def test_malformed_lines_are_skipped():
    assert len(mountinfo.entries(LINES)) == 3
