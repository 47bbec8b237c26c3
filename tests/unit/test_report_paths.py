"""validate re-runs create's checks without the part each one stopped at: it reads the JSON
path of create's error back into keys and indexes, which must give the same path again."""

from __future__ import annotations

import pytest

from ocirt.config.report import _parse_path
from ocirt.config.semantic import format_path


@pytest.mark.parametrize("path, parts", [
    ("process.env[3]", ["process", "env", 3]),
    ("mounts[7].options[2]", ["mounts", 7, "options", 2]),
    ('linux.sysctl["kernel.hostname"]', ["linux", "sysctl", "kernel.hostname"]),
    ('linux.resources.unified["cgroup.procs"]', ["linux", "resources", "unified", "cgroup.procs"]),
    ('annotations["a\\"b"].x', ["annotations", 'a"b', "x"]),
])
def test_a_path_reads_back_into_the_parts_it_was_made_from(path, parts):
    assert _parse_path(path) == parts
    assert format_path(parts) == path
