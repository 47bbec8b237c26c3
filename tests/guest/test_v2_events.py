"""events on a pure cgroup v2 host: --stats read from the v2 files (cpu.stat, memory.current,
memory.max, pids.current, hugetlb.*.current), and OOM kills from memory.events, reported as
runc reports them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ocirt_testlib import wait_until

from v2lib import MiB, keyed, read, start, needs_pure_v2

pytestmark = needs_pure_v2


def stats(runtime, cid: str) -> dict:
    out = runtime.ok("events", "--stats", cid).stdout.decode()
    ev = json.loads(out)
    assert ev["type"] == "stats" and ev["id"] == cid
    return ev["data"]


def test_events_stats_reads_the_v2_files(ocirt, bundle, cid):
    d = start(ocirt, bundle, cid, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 50}},
              script="i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000")
    wait_until(lambda: int(keyed(d, "cpu.stat")["usage_usec"]) > 0, "cpu usage")
    data = stats(ocirt, cid)
    assert data["pids"] == {"current": int(read(d, "pids.current")), "limit": 50}
    mem = data["memory"]["usage"]
    assert mem["limit"] == int(read(d, "memory.max")) == 64 * MiB
    assert 0 < mem["usage"] <= mem["max"] == int(read(d, "memory.peak"))
    assert data["memory"]["raw"]["anon"] >= 0 and "file" in data["memory"]["raw"]
    cpu = data["cpu"]["usage"]
    assert cpu["total"] >= 1000 and cpu["total"] % 1000 == 0     # usage_usec in ns
    assert "percpu" not in cpu      # v2 has no per-CPU counters (runc's omitempty)


def test_events_stats_has_the_members_runc_prints(ocirt, runc, bundle, cid):
    res = {"memory": {"limit": 64 * MiB, "swap": 64 * MiB}, "pids": {"limit": 50},
           "cpu": {"quota": 50000, "period": 100000}}
    start(ocirt, bundle, cid, res)
    start(runc, bundle, cid + "-runc")
    ours, ref = stats(ocirt, cid), stats(runc, cid + "-runc")
    assert set(ours) == set(ref)
    for key in ("cpu", "memory", "pids"):
        assert set(ours[key]) == set(ref[key]), key
    for key in ("usage", "swap"):
        # plus the peak ("max", from memory.peak, as runc 1.2 reports it; 1.1 has none)
        assert set(ours["memory"][key]) - {"max"} == set(ref["memory"][key]), key
        assert ours["memory"][key]["limit"] == ref["memory"][key]["limit"], key
    assert ours["pids"]["limit"] == ref["pids"]["limit"] == 50
    assert set(ours["memory"]["raw"]) == set(ref["memory"]["raw"])


def _oom_events(runtime, bundle, cid: str, out: Path) -> list[dict]:
    """Create a container that runs out of memory, follow its events from before it starts
    until they end, and return them."""
    runtime.ok("create", "--bundle", str(bundle.path), cid)
    with open(out, "wb") as f:
        ev = subprocess.Popen(runtime.cmd("events", "--interval", "200ms", cid), stdout=f,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: b'"type":"stats"' in out.read_bytes(), "a first stats line")
        runtime.ok("start", cid)
        wait_until(lambda: b'"type":"oom"' in out.read_bytes(), "an oom event")
    finally:
        ev.kill()
        ev.wait()
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_an_oom_kill_is_reported_as_runc_reports_it(ocirt, runc, bundle, cid, tmp_path):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 16 * MiB, "swap": 16 * MiB}
    bundle.args("tail", "/dev/zero")          # buffers a line that never ends
    ours = _oom_events(ocirt, bundle, cid, tmp_path / "ours")
    theirs = _oom_events(runc, bundle, cid + "-runc", tmp_path / "theirs")
    assert {"type": "oom", "id": cid} in ours
    assert {"type": "oom", "id": cid + "-runc"} in theirs
    d = f"/sys/fs/cgroup/ocirt/{cid}"
    assert int(keyed(d, "memory.events")["oom_kill"]) >= 1
