"""A worker for the control and live-output tests; what it does depends on the task.

- "... listen ...": reads its standard input line by line, printing ``heard: LINE``
  for each, and ends at the line ``done``;
- "... ask ...": when run with a conversation (``CHATBUS_CONVERSATION``) prints it
  and ``reply: $CHATBUS_REPLY`` and ends; otherwise records its pid in ``pids.txt``
  and waits (for a reply that runs it again);
- "... flaky ...": fails the first time (exit 3), succeeds the next;
- "... ticks N ...": prints ``tick i`` and ``PROGRESS`` N times, 0.05 s apart.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> int:
    task = sys.argv[1]
    words = task.split()
    if "listen" in words:
        print("listening", flush=True)
        for line in sys.stdin:
            line = line.rstrip("\n")
            print(f"heard: {line}", flush=True)
            if line == "done":
                return 0
        return 1
    if "ask" in words:
        conversation = os.environ.get("CHATBUS_CONVERSATION")
        if conversation:
            print("conversation: " + Path(conversation).read_text().strip().replace("\n\n", " | "), flush=True)
            print(f"reply: {os.environ.get('CHATBUS_REPLY')}", flush=True)
            return 0
        Path("pids.txt").write_text(str(os.getpid()))
        print("waiting for an answer", flush=True)
        time.sleep(600)
        return 0
    if "flaky" in words:
        tried = Path("tried")
        if not tried.exists():
            tried.write_text("once")
            print("error: the network is down", file=sys.stderr, flush=True)
            return 3
        print("worked the second time", flush=True)
        return 0
    if "ticks" in words:
        count = int(words[words.index("ticks") + 1])
        for i in range(1, count + 1):
            print(f"tick {i}", flush=True)
            print(f"PROGRESS {i * 100 // count}", flush=True)
            time.sleep(0.05)
        return 0
    print(f"did {task}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
