"""CVE-2016-9962: the init is dumpable only while its id maps are written, never once a
container process could reach it. Observed as an attacker would: a process of the container
(same user namespace, same ids, no capabilities) reading the init's /proc/1/environ, which only
a dumpable init allows. Rootless is where it matters: there the init's host uid never changes,
so nothing but ocirt makes it non-dumpable again (a change of uid would)."""

from __future__ import annotations

import time
from pathlib import Path

READ_INIT = ("sh", "-c", "cat /proc/1/environ >/dev/null && echo readable")


def test_created_rootless_init_is_not_dumpable(rl_ocirt, rl_bundle, cid):
    rl_bundle.process["capabilities"] = {k: [] for k in ("bounding", "effective", "permitted",
                                                          "inheritable", "ambient")}
    rl_bundle.args("sleep", "100")
    rl_ocirt.ok("create", "--bundle", str(rl_bundle.path), cid)
    before = rl_ocirt("exec", cid, *READ_INIT)
    assert b"readable" not in before.stdout and b"Permission denied" in before.stderr
    pid = rl_ocirt.state(cid)["pid"]
    rl_ocirt.ok("start", cid)
    for _ in range(500):        # until the init has exec'd (start returns just before)
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep"):
            break
        time.sleep(0.01)
    # After execve the init is dumpable: the same read works, so the refusal above was the
    # created init's non-dumpable state and nothing else.
    assert rl_ocirt.ok("exec", cid, *READ_INIT).stdout.strip() == b"readable"
