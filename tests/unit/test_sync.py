"""The runtime/init message channel."""

from __future__ import annotations

import os

import pytest

from ocirt.spawn.sync import Sync, SyncError


def test_messages_keep_their_boundaries_and_fields():
    a, b = Sync.pair()
    a.send("pid", pid=42)
    a.send("created", warnings=["w"])
    assert b.recv() == ({"pid": 42, "type": "pid"}, [])
    assert b.recv()[0] == {"warnings": ["w"], "type": "created"}


def test_fds_travel_with_a_message():
    a, b = Sync.pair()
    r, w = os.pipe()
    a.send("listener", fds=[r])
    msg, fds = b.recv()
    assert msg["type"] == "listener" and len(fds) == 1
    os.write(w, b"x")
    assert os.read(fds[0], 1) == b"x"
    for fd in (r, w, *fds):
        os.close(fd)


def test_peer_gone_is_eof():
    a, b = Sync.pair()
    a.close()
    with pytest.raises(SyncError, match="EOF"):
        b.recv()


def test_last_words_of_a_peer_that_left_our_message_unread_are_still_read():
    a, b = Sync.pair()
    b.send("error", message="mount failed")
    a.send("cgroup")          # never read: b closes with it queued (ECONNRESET for a)
    b.close()
    assert a.recv()[0] == {"message": "mount failed", "type": "error"}
    with pytest.raises(SyncError, match="EOF"):
        a.recv()


def test_expect_turns_an_error_message_into_sync_error():
    a, b = Sync.pair()
    a.send("error", message="boom")
    with pytest.raises(SyncError, match="boom"):
        b.expect("pid")
