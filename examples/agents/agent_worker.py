"""A worker command for chatbus agents that really does something: it writes notes.

chatbus runs it for each task, in the agent's own working directory, as the
agent's worker command (never through a shell)::

    chatbus agents hire builder developer --command "python /path/to/agent_worker.py {task}"

Each task becomes a Markdown file in ``notes/`` and a line in ``worklog.md``.
``PROGRESS <n>`` lines show up as the agent's progress in the chat, and the
``ATTACH notes/<task>.md`` line puts the note on the agent's completion
message, as a file people can open. A task
that asks for the impossible fails on purpose, so you can see the agent ask
the team for help.
"""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def slug(task: str) -> str:
    """A file name for a task: ``Write the README!`` -> ``write-the-readme``."""
    words = re.findall(r"[a-z0-9]+", task.lower())
    return "-".join(words)[:60].strip("-") or "task"


def main(argv: list[str]) -> int:
    task = " ".join(argv[1:]).strip() or os.environ.get("CHATBUS_TASK", "").strip()
    if not task:
        print("give the task as the first argument", file=sys.stderr)
        return 2
    agent = os.environ.get("CHATBUS_AGENT", "an agent")
    print("PROGRESS 10", flush=True)
    if "impossible" in task.lower():
        print(f"I do not know how to {task}: nobody does.", file=sys.stderr)
        return 1
    notes = Path("notes")
    notes.mkdir(exist_ok=True)
    path = notes / f"{slug(task)}.md"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(f"# {task}\n\nWritten by {agent} on {now}.\n", encoding="utf-8")
    print("PROGRESS 60", flush=True)
    time.sleep(0.05)  # a real worker takes a while; this one only pretends a little
    with Path("worklog.md").open("a", encoding="utf-8") as log:
        log.write(f"- {now}: {task} ({path})\n")
    print("PROGRESS 100", flush=True)
    print(f"ATTACH {path}", flush=True)
    print(f"wrote {path} and a line in worklog.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
