"""Tests that need the VM guest (pure cgroup v2, systemd as PID 1, criu): collected only inside
it, where hack/vm sets OCIRT_GUEST=1. On a host they run through the VM lane (tests/vm/)."""

import os

if os.environ.get("OCIRT_GUEST") != "1":
    collect_ignore_glob = ["test_*.py"]
