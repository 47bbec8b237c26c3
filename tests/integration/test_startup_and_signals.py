"""Start-up checks and signal handling of the runtime itself: an unusable --log is an error at
once (as in runc), and `run` passes on signals meant for the process but not SIGWINCH to a
container without a terminal (runc neither)."""

from __future__ import annotations

import signal
import subprocess


def test_an_unwritable_log_fails_at_start_up(ocirt, tmp_path):
    log = tmp_path / "missing-dir" / "log.json"
    p = ocirt("list", global_args=("--log", str(log)))
    assert p.returncode == 1
    assert f"open {log}".encode() in p.stderr
    assert not log.exists()


def test_an_unwritable_log_stops_create_before_anything_exists(ocirt, bundle, cid, tmp_path):
    p = ocirt("create", "--bundle", str(bundle.path), cid,
              global_args=("--log", str(tmp_path / "missing-dir" / "log")))
    assert p.returncode == 1
    assert ocirt.ids() == []


def test_a_writable_log_still_works(ocirt, tmp_path):
    log = tmp_path / "log.json"
    ocirt.ok("list", global_args=("--log", str(log)))
    assert log.exists()


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
