"""`run` passes on the signals meant for its process, but not SIGWINCH to a container without
a terminal (runc does not either)."""

from __future__ import annotations

import signal
import subprocess


def test_sigwinch_is_not_forwarded_without_a_terminal(ocirt, bundle, cid):
    bundle.sh("trap 'echo winch' WINCH; trap 'exit 3' TERM; "
              "while :; do echo tick; sleep 0.05; done")
    p = subprocess.Popen(ocirt.cmd("run", "--bundle", str(bundle.path), cid),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"tick\n"
    p.send_signal(signal.SIGWINCH)
    # A trap runs between two loop turns: two more ticks and it would have printed.
    seen = [p.stdout.readline() for _ in range(3)]
    p.send_signal(signal.SIGTERM)      # forwarded: the container exits 3
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    assert b"winch\n" not in seen + out.splitlines(keepends=True)
