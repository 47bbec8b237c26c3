"""The host side of the VM lane: which tests run in the guest, their node ids as collected on
this host, and their outcomes read back from the guest's JUnit XML. Imported by name from
tests/vm (conftest modules are not importable)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
HACK_VM = REPO / "hack" / "vm"

# The guest selection: the guest-only tests, and the host suites that must pass on a pure
# cgroup v2 host with systemd as PID 1 as well; the waiting init also on the guest's older
# kernel (6.1: no MFD_EXEC).
GUEST_SELECTION = [
    "tests/guest",
    "tests/cgroups",
    "tests/integration/test_cgroup_verbs.py",
    "tests/integration/test_waiting_init.py",
]

# A TCG guest on two shared cores runs the selection in minutes, not seconds.
DEFAULT_TIMEOUT = 2400


def disabled_reason() -> str | None:
    """Why the lane cannot or should not run here, or None."""
    if os.environ.get("OCIRT_GUEST") == "1":
        return "inside the VM guest already"
    if os.environ.get("OCIRT_VM", "1") == "0":
        return "the VM lane is disabled (OCIRT_VM=0)"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (hack/install --test installs qemu-system-x86)"
    if os.geteuid() != 0:
        return "the VM lane needs root (it builds the guest image with debootstrap)"
    return None


def collect_guest_node_ids() -> tuple[list[str], str]:
    """The node ids of the guest selection, collected here as the guest would (OCIRT_GUEST=1),
    and pytest's output (which names the files that failed to collect)."""
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                        "-p", "no:cacheprovider", *GUEST_SELECTION],
                       cwd=REPO, env={**os.environ, "OCIRT_GUEST": "1"},
                       capture_output=True, text=True)
    ids = [line for line in p.stdout.splitlines()
           if "::" in line and line.startswith(tuple(s.rstrip("/") for s in GUEST_SELECTION))]
    return ids, p.stdout + p.stderr


def junit_key(node_id: str) -> tuple[str, str]:
    """(classname, name) of a node id in pytest's JUnit XML (as _pytest.junitxml mangles it)."""
    path, bracket, params = node_id.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


@dataclass
class Outcome:
    kind: str  # passed, failed, skipped, xfailed
    message: str = ""


def read_junit(path: Path) -> dict[tuple[str, str], Outcome]:
    """Each test case of a JUnit XML report: its outcome and the message that goes with it
    (failure or error text, skip reason). An error in setup or teardown is a failure."""
    results: dict[tuple[str, str], Outcome] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        bad = [e for e in case if e.tag in ("failure", "error")]
        skipped = case.find("skipped")
        if bad:
            text = "\n".join(f"{e.tag}: {e.get('message', '')}\n{e.text or ''}" for e in bad)
            outcome = Outcome("failed", text)
        elif skipped is not None:
            kind = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
            outcome = Outcome(kind, skipped.get("message", "") or skipped.text or "")
        else:
            outcome = Outcome("passed")
        # A test case reported twice (a teardown error after a pass) keeps the worse outcome.
        if key not in results or outcome.kind == "failed":
            results[key] = outcome
    return results


@dataclass
class GuestRun:
    status: int
    output: str
    results: dict[tuple[str, str], Outcome] | None  # None: no report came back

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-n:])


def run_in_guest(work: Path, tests: list[str]) -> GuestRun:
    """Tests (paths or node ids) in one guest (one boot), with a JUnit XML report."""
    junit = work / "guest-junit.xml"
    timeout = os.environ.get("OCIRT_VM_TIMEOUT", str(DEFAULT_TIMEOUT))
    p = subprocess.run([str(HACK_VM), "pytest", "--checkout", str(REPO), "--timeout", timeout,
                        "--junitxml", str(junit), "--", *tests],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors="replace")
    (work / "guest-output.txt").write_text(p.stdout)
    results = read_junit(junit) if junit.exists() else None
    return GuestRun(p.returncode, p.stdout, results)
