"""A worker command for the agents' tests; what it does depends on the task.

- "... fail ...": prints an error line on stderr and exits with status 2;
- "... hang ...": starts a child, records both pids in ``pids.txt`` and sleeps;
- "... slow ...": like the default, after a second;
- anything else: reports progress 10/50/90 and writes the task to ``result.txt``
  in its working directory (where the agent runs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    task = sys.argv[1]
    print(f"agent {os.environ.get('CHATBUS_AGENT')} starting: {task}", flush=True)
    if "fail" in task:
        print("error: the database is locked", file=sys.stderr, flush=True)
        return 2
    if "hang" in task:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path("pids.txt").write_text(f"{os.getpid()} {child.pid}")
        print("waiting for something that never comes", flush=True)
        time.sleep(600)
        return 0
    if "slow" in task:
        time.sleep(1.0)
    for percent in (10, 50, 90):
        print(f"PROGRESS {percent}", flush=True)
        time.sleep(0.02)
    Path("result.txt").write_text(task)
    print(f"wrote result.txt in {Path.cwd().name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
