"""A worker's keeper: it stops an agent's worker when the chatbus server that started it dies.

A worker runs in a session of its own (so that stopping it stops everything
it started), which also means it outlives a server killed with SIGKILL or a
crash: the task would go on unwatched while the chat (the restarted server,
or the node that took over) reports it as interrupted, and ``/retry`` would
run it a second time beside it. So with each worker the server starts this
small program, with the read end of a pipe only the server can write to:

* the task ends while the server runs: the server writes one byte and the
  keeper leaves without doing anything;
* the server dies, however: the pipe reads end-of-file, and the keeper stops
  the worker's process group as the server would have (SIGTERM, ``grace``
  seconds, SIGKILL).

It is run by path with the standard library alone (``python -I -S keeper.py
FD PGID GRACE``), in a session of its own so a Ctrl+C meant for the server
does not stop it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

__all__ = ["main", "stop_group"]


def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM to the process group ``pgid``, then SIGKILL to what is left after ``grace`` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """``keeper.py FD PGID GRACE``: wait on the pipe ``FD``; end-of-file stops the group ``PGID``."""
    fd, pgid, grace = int(argv[1]), int(argv[2]), float(argv[3])
    try:
        with os.fdopen(fd, "rb", buffering=0) as lifeline:
            said = lifeline.read(1)
    except OSError:
        said = b""
    if said:  # the server is alive and done with this worker
        return 0
    print(
        f"chatbus: the server that started agent worker {pgid} stopped without stopping it; stopping it now",
        file=sys.stderr,
    )
    stop_group(pgid, grace)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
