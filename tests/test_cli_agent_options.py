"""``chatbus agents hire`` sets an agent's model, stdin and who may give it work,
and hiring again keeps what is not given."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support import CHATBUS, chatbus_env, run_chatbus


def test_hire_sets_and_keeps_the_roster_options(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    hired = run_chatbus(
        "agents", "hire", "alice", "developer", "--command", "w {task}", "--model", "echo", "--stdin",
        "--db", db, "--create", "--allow", "manager", "carol",
    )  # fmt: skip
    assert hired.returncode == 0, hired.stderr
    assert hired.stdout.strip() == (
        "hired alice (developer) with command w '{task}', model echo, replies on standard input, work from manager, carol"
    )
    again = run_chatbus("agents", "hire", "alice", "lead", "--db", db)
    assert again.returncode == 0, again.stderr
    listed = json.loads(run_chatbus("agents", "list", "--json", "--db", db).stdout)
    assert listed[0]["role"] == "lead"
    assert (listed[0]["command"], listed[0]["model"], listed[0]["stdin"], listed[0]["allow"]) == (
        ["w", "{task}"],
        "echo",
        True,
        ["manager", "carol"],
    )
    off = run_chatbus("agents", "hire", "alice", "lead", "--no-stdin", "--db", db)
    assert (
        off.returncode == 0
        and json.loads(run_chatbus("agents", "list", "--json", "--db", db).stdout)[0]["stdin"] is False
    )


def test_a_list_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """``chatbus agents list --json | head -3``: no traceback when head has read enough."""
    db = str(tmp_path / "chat.db")
    assert run_chatbus("agents", "hire", "alice", "developer", "--db", db, "--create").returncode == 0
    listing = subprocess.Popen(
        [*CHATBUS, "agents", "list", "--json", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(chatbus_env()),
        text=True,
    )
    assert listing.stdout is not None
    listing.stdout.close()  # the reader is gone before chatbus writes anything
    _out, err = listing.communicate(timeout=60)
    assert "Traceback" not in err, err
