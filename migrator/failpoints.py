"""Named points where a test can make this process die on purpose.

`MIGRATOR_FAILPOINT=<name>` makes the process SIGKILL itself the first time it
reaches that point: the crash tests use it to land exactly between a remote
action and the store recording it. Unset (always, in production) it costs a
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = frozenset({
    "after_unload",         # UNLOAD finished and staging verified; the store not yet told
    "after_load_commit",    # target transaction committed; the store not yet told
    "after_remote_call",    # a recorded remote action answered; its response not yet stored
    "before_first_rename",  # the cutover window caught up; its last write check not yet made, nothing renamed
    "between_renames",      # cutover renamed the source away and recorded it; the target not yet renamed in
})


def hit(name: str) -> None:
    if os.environ.get("MIGRATOR_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
