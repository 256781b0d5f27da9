"""A worker command that writes a report and names files to attach (``ATTACH`` lines).

Besides ``report.md`` and ``charts/plot.csv`` (its own files) it names files an
agent must never attach: one outside its directory, a symbolic link out of it,
a directory, and one that does not exist.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> int:
    task = sys.argv[1]
    secret = Path(os.environ["REPORTER_SECRET"])
    Path("report.md").write_text(f"# Report\n\n{task}\n")
    Path("charts").mkdir(exist_ok=True)
    Path("charts/plot.csv").write_text("x,y\n1,2\n")
    link = Path("innocent.txt")
    if not link.is_symlink():
        link.symlink_to(secret)
    print("PROGRESS 50", flush=True)
    for name in ("report.md", "charts/plot.csv", str(secret), "../../secret.txt", "innocent.txt", "charts", "gone.txt"):
        print(f"ATTACH {name}", flush=True)
    print("ATTACH report.md", flush=True)  # named twice, attached once
    print(f"wrote the report for {task}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
