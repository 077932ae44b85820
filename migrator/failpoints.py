"""Named points where a test can make this process die on purpose.

`MIGRATOR_FAILPOINT=<name>` makes the process SIGKILL itself the first time it
reaches that point: the crash tests use it to land exactly between a remote
action and the store recording it (`MIGRATOR_FAILPOINT_SIGNAL` names another
signal). Unset (always, in production) it costs a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = frozenset({
    "after_unload",         # UNLOAD finished and staging verified; the store not yet told
    "after_load_commit",    # target transaction committed; the store not yet told
    "after_part_unload",    # a table part's UNLOAD finished and its staging verified; the store not yet told
    "after_part_load_commit",  # a table part's load transaction committed; the store not yet told
    "after_remote_call",    # a recorded remote action answered; its response not yet stored
    "before_first_rename",  # the cutover window caught up; its last write check not yet made, nothing renamed
    "between_renames",      # cutover renamed the source away and recorded it; the target not yet renamed in
})


#: `MIGRATOR_FAILPOINT_SIGNAL=TERM` (or HUP, INT) sends that signal instead of SIGKILL, once:
#: the signal tests use it to ask for a stop at a known point and watch the run stop cleanly.
SIGNAL_ENV = "MIGRATOR_FAILPOINT_SIGNAL"
_sent: set[str] = set()


def hit(name: str) -> None:
    if os.environ.get("MIGRATOR_FAILPOINT") != name or name in _sent:
        return
    wanted = os.environ.get(SIGNAL_ENV, "KILL").upper().removeprefix("SIG")
    _sent.add(name)
    os.kill(os.getpid(), signal.Signals[f"SIG{wanted}"])
