"""Which files a worker may attach: only regular files inside its working directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from chatbus import Attachment, Hub, Settings, hookimpl
from chatbus.plugins.agents.attach import NotAttached, open_inside
from chatbus.testing import MemoryTransport


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "agents" / "alice"
    (root / "out").mkdir(parents=True)
    (root / "report.md").write_text("the report")
    (root / "out" / "plot.csv").write_text("x,y")
    (tmp_path / "secret.txt").write_text("the server's secret")
    return root


def read(root: Path, given: str) -> str:
    with os.fdopen(open_inside(root, given), "rb") as opened:
        return opened.read().decode()


def refused(root: Path, given: str) -> str:
    with pytest.raises(NotAttached) as caught:
        open_inside(root, given)
    return str(caught.value)


def test_files_of_the_working_directory_are_opened(workdir: Path) -> None:
    assert read(workdir, "report.md") == "the report"
    assert read(workdir, "./out/plot.csv") == "x,y"
    assert read(workdir, "out//plot.csv") == "x,y"
    assert read(workdir, str(workdir / "out" / "plot.csv")) == "x,y"


@pytest.mark.parametrize("given", ["../secret.txt", "out/../../secret.txt", "out/../report.md"])
def test_a_path_that_climbs_out_is_refused(workdir: Path, given: str) -> None:
    assert refused(workdir, given) == "it is outside my working directory"


def test_an_absolute_path_elsewhere_is_refused(workdir: Path) -> None:
    assert refused(workdir, "/etc/passwd") == "it is outside my working directory"
    assert refused(workdir, str(workdir.parent.parent / "secret.txt")) == "it is outside my working directory"


def test_a_symbolic_link_is_never_followed(workdir: Path) -> None:
    (workdir / "innocent.txt").symlink_to(workdir.parent.parent / "secret.txt")
    (workdir / "inside.txt").symlink_to(workdir / "report.md")
    (workdir / "elsewhere").symlink_to(workdir.parent.parent, target_is_directory=True)
    assert "symbolic link" in refused(workdir, "innocent.txt")
    assert "symbolic link" in refused(workdir, "inside.txt")
    assert "symbolic link" in refused(workdir, "elsewhere/secret.txt")


def test_a_hard_link_a_directory_a_fifo_and_a_missing_file_are_refused(workdir: Path) -> None:
    os.link(workdir.parent.parent / "secret.txt", workdir / "linked.txt")
    os.mkfifo(workdir / "pipe")
    assert refused(workdir, "linked.txt") == "it is a hard link to another file"
    assert refused(workdir, "out") == "it is a directory, not a file"
    assert refused(workdir, ".") == "it is a directory, not a file"
    assert refused(workdir, "pipe") == "it is not a regular file"  # and opening it did not wait for a writer
    assert refused(workdir, "gone.txt") == "there is no such file"
    assert "not a directory" in refused(workdir, "report.md/x")


REPORTER = Path(__file__).parent / "workers" / "reporter.py"


#: Everyone here may give work (who may is tested in test_trust.py).
ANYONE = {"allow_roles": ["user"]}


async def read_stored(hub: Hub, file_id: str) -> bytes:
    stored = await hub.files.open(file_id)
    assert stored is not None
    return b"".join([chunk async for chunk in stored.read(0, stored.size)])


async def test_a_worker_attaches_the_files_it_wrote_and_nothing_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's secret")
    monkeypatch.setenv("REPORTER_SECRET", str(secret))
    transport = MemoryTransport()
    hub = Hub(Settings.isolated(db=":memory:", agents=ANYONE), transports=[transport], load_entrypoints=False)
    async with hub:
        await hub.hire("alice", "analyst", [sys.executable, str(REPORTER), "{task}"])
        asked = await transport.say("carol", "@alice please write the weekly report")
        done = await transport.wait_for(lambda m: m.text.startswith("✅"), 10)
        assert done.sender == "alice" and done.reply_to == asked.id
        assert [(a.name, a.content_type, a.uploader) for a in done.attachments] == [
            ("report.md", "text/markdown", "alice"),
            ("plot.csv", "text/csv", "alice"),
        ]
        assert await read_stored(hub, done.attachments[0].id) == b"# Report\n\nwrite the weekly report\n"
        assert await read_stored(hub, done.attachments[1].id) == b"x,y\n1,2\n"
        assert done.text.splitlines() == [
            "✅ Completed: write the weekly report",
            "wrote the report for write the weekly report",
            f"⚠️ {secret} was not attached: it is outside my working directory",
            "⚠️ ../../secret.txt was not attached: it is outside my working directory",
            "⚠️ innocent.txt was not attached: it is a symbolic link; only files in my working directory are attached",
            "⚠️ charts was not attached: it is a directory, not a file",
            "⚠️ gone.txt was not attached: there is no such file",
        ]
        # What people see later carries the files too.
        messages, _more = await hub.history(limit=10)
        (again,) = [m for m in messages if m.id == done.id]
        assert [a.name for a in again.attachments] == ["report.md", "plot.csv"]


MANY = """
from pathlib import Path
Path("big.txt").write_bytes(b"x" * 5000)
for name in ("a.txt", "b.txt", "c.txt"):
    Path(name).write_text(name)
for name in ("big.txt", "a.txt", "b.txt", "c.txt"):
    print("ATTACH", name)
"""


async def test_files_over_the_limits_are_left_out_with_a_note(tmp_path: Path) -> None:
    transport = MemoryTransport()
    settings = Settings.isolated(db=":memory:", agents=ANYONE, files={"max_per_message": 2, "max_file_bytes": 1000})
    hub = Hub(settings, transports=[transport], load_entrypoints=False)
    async with hub:
        await hub.hire("alice", "writer", [sys.executable, "-c", MANY])
        await transport.say("carol", "@alice please write the files")
        done = await transport.wait_for(lambda m: m.text.startswith("✅"), 10)
        assert [a.name for a in done.attachments] == ["a.txt", "b.txt"]
        lines = done.text.splitlines()
        assert lines[0] == "✅ Completed: write the files"
        assert lines[1].startswith("⚠️ big.txt was not attached: the file is larger than")
        assert lines[2:] == ["⚠️ c.txt was not attached: a message carries at most 2 files"]


FAILING = """
import sys
from pathlib import Path
Path("build.log").write_text("step 3: 2 tests failed")
print("ATTACH build.log")
print("ATTACH ../escape.log")
print("error: 2 tests failed", file=sys.stderr)
sys.exit(1)
"""


async def test_a_failing_worker_attaches_its_log_to_the_help_request(tmp_path: Path) -> None:
    transport = MemoryTransport()
    hub = Hub(Settings.isolated(db=":memory:", agents=ANYONE), transports=[transport], load_entrypoints=False)
    async with hub:
        await hub.hire("alice", "builder", [sys.executable, "-c", FAILING])
        asked = await transport.say("carol", "@alice please run the tests")
        help_request = await transport.wait_for(lambda m: m.text.startswith("@team"), 10)
        assert help_request.reply_to == asked.id
        assert help_request.text.splitlines() == [
            "@team I need help with this task: run the tests.",
            "Problem: error: 2 tests failed",
            "(exit status 1)",
            "⚠️ ../escape.log was not attached: it is outside my working directory",
        ]
        (log,) = help_request.attachments
        assert log.name == "build.log" and await read_stored(hub, log.id) == b"step 3: 2 tests failed"


class BrokenStore:
    """A file store whose disk is full."""

    @hookimpl(tryfirst=True)
    def store_file(self, attachment: Attachment, source: Path) -> bool:
        raise OSError(28, "No space left on device")


async def test_a_file_store_that_fails_leaves_the_file_out_and_the_message_still_goes(tmp_path: Path) -> None:
    transport = MemoryTransport()
    hub = Hub(
        Settings.isolated(db=":memory:", agents=ANYONE),
        transports=[transport],
        plugins=[BrokenStore()],
        load_entrypoints=False,
    )
    async with hub:
        await hub.hire(
            "alice", "writer", [sys.executable, "-c", "open('a.txt', 'w').write('a'); print('ATTACH a.txt')"]
        )
        await transport.say("carol", "@alice please write a")
        done = await transport.wait_for(lambda m: m.text.startswith("✅"), 10)
        assert done.attachments == ()
        assert done.text.splitlines()[-1].startswith("⚠️ a.txt was not attached: ")
