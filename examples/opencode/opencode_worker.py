#!/usr/bin/env python3
"""A chatbus worker that hands the task to opencode (https://opencode.ai).

Hire an agent with it (any python 3.11+, it needs nothing but the standard library)::

    chatbus agents hire alice developer \\
        --command "python3 /path/to/examples/opencode/opencode_worker.py {task}"

It runs ``opencode run --format json [--model $OPENCODE_MODEL] PROMPT`` in the
agent's working directory, where PROMPT is the task, followed by the
conversation about it when chatbus runs it again with people's replies
(``CHATBUS_CONVERSATION``). opencode prints one JSON event per line; this
worker reads them as they come and speaks chatbus's worker contract:

``{"type": "tool_use", "part": {"tool": T, "state": {"title": X}}}``
    a line ``🔧 T: X`` (shown in the task's live status message);
``{"type": "step_finish", ...}``
    ``PROGRESS`` rising by 10 per step, up to 90 (opencode cannot know how
    far it is; this only shows it moving);
``{"type": "text", "part": {"text": ...}}``
    the answer as it is written; the last text is the final answer, printed
    at the end so the completion message quotes it, and written to
    ``opencode-answer.md`` and attached (``ATTACH``) when it is longer than
    what the message quotes;
``{"type": "error", "error": {"data": {"message": M}}}``
    ``M`` on standard error, and the worker fails (exit status 1), so the agent
    asks the team for help quoting it.

Other lines (not JSON) are passed on as they are. opencode's own exit status
is the worker's when it is not 0. ``OPENCODE`` names the program (default
``opencode``); ``OPENCODE_MODEL`` the model (``provider/model``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Lines of the final answer quoted in the completion message; longer ones are attached as a file.
QUOTED_LINES = 8
ANSWER_FILE = "opencode-answer.md"


def prompt_for(task: str) -> str:
    """The task, and the conversation about it when there is one."""
    conversation = os.environ.get("CHATBUS_CONVERSATION")
    if not conversation:
        return task
    try:
        said = Path(conversation).read_text(encoding="utf-8").strip()
    except OSError:
        return task
    return f"{task}\n\nWhat the team said about this task since you started it:\n{said}"


def command_for(prompt: str) -> list[str]:
    command = [os.environ.get("OPENCODE", "opencode"), "run", "--format", "json"]
    model = os.environ.get("OPENCODE_MODEL")
    if model:
        command += ["--model", model]
    return [*command, prompt]


class Reader:
    """What the events said so far."""

    def __init__(self) -> None:
        self.answer = ""
        self.errors: list[str] = []
        self.steps = 0

    def line(self, raw: str) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            if raw.strip():
                print(raw, flush=True)
            return
        self.event(event)

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        part = event.get("part") if isinstance(event.get("part"), dict) else {}
        if kind == "tool_use":
            state = part.get("state") if isinstance(part.get("state"), dict) else {}
            title = state.get("title") or state.get("status") or ""
            print(f"🔧 {part.get('tool', 'tool')}: {title}".rstrip(": "), flush=True)
        elif kind == "text" and isinstance(part.get("text"), str) and part["text"].strip():
            self.answer = part["text"].strip()
        elif kind == "step_finish":
            self.steps += 1
            print(f"PROGRESS {min(90, 10 * self.steps)}", flush=True)
        elif kind == "error":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            data = error.get("data") if isinstance(error.get("data"), dict) else {}
            message = data.get("message") or error.get("message") or error.get("name") or "opencode failed"
            self.errors.append(str(message))
            print(f"opencode: {message}", file=sys.stderr, flush=True)


def main() -> int:
    task = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CHATBUS_TASK", "")
    if not task.strip():
        print("no task given (as the first argument or CHATBUS_TASK)", file=sys.stderr)
        return 2
    try:
        process = subprocess.Popen(command_for(prompt_for(task)), stdout=subprocess.PIPE, text=True, bufsize=1)
    except FileNotFoundError:
        print("opencode is not installed here (or set OPENCODE to where it is)", file=sys.stderr)
        return 127
    reader = Reader()
    assert process.stdout is not None
    for raw in process.stdout:
        reader.line(raw.rstrip("\n"))
    code = process.wait()
    if reader.answer:
        lines = reader.answer.splitlines()
        if len(lines) > QUOTED_LINES:
            Path(ANSWER_FILE).write_text(reader.answer + "\n", encoding="utf-8")
            print(f"ATTACH {ANSWER_FILE}", flush=True)
            lines = [*lines[: QUOTED_LINES - 1], f"… (the whole answer is in {ANSWER_FILE})"]
        print("\n".join(lines), flush=True)
    if code != 0:
        return code
    return 1 if reader.errors else 0


if __name__ == "__main__":
    sys.exit(main())
