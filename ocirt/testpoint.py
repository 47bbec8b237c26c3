"""Named points where the runtime can be made to stop itself, for crash-consistency tests.

With OCIRT_TEST_PAUSE_AT=create:cgroup (say), the runtime sends itself SIGSTOP when it reaches
that point, so a test can kill it there with SIGKILL or SIGTERM and check that what is left
is visible to `state` and removable by `delete -f`. Unset (always, outside tests), a point is
one comparison with None: the environment is read once, when this module is imported.

Points: create:dir (state dir and its creating record exist), create:forked (the
intermediate exists), create:cgroup (the cgroups exist), create:joined (the init is in them),
create:created (the init reported "created", state.json not yet final), create:saved
(state.json final, the init not yet told); start:locked, start:released; exec:forked,
exec:joined; delete:killed, delete:cgroup.
"""

from __future__ import annotations

import posix

# posix.environ, os.environ's bytes underneath: `import os` would cost more than the verb.
_AT = (posix.environ.get(b"OCIRT_TEST_PAUSE_AT") or b"").decode(errors="surrogateescape") or None


def reached(point: str) -> None:
    if _AT is not None and _AT == point:
        posix.kill(posix.getpid(), 19)  # SIGSTOP: a test resumes, or kills, us from here
