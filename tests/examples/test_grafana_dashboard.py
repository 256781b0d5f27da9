"""The Grafana dashboard in examples/ asks only for metrics a running chatbus serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chatbus import Settings
from chatbus.testing import make_hub

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "chatbus.json"
README = Path(__file__).resolve().parents[2] / "README.md"
# A histogram's series carry suffixes, and one without labels its creation time; the README names the family.
SUFFIXES = ("_bucket", "_count", "_sum", "_created")


def served_names() -> set[str]:
    hub = make_hub(settings=Settings.isolated(db=":memory:"))
    text = hub.metrics.exposition().decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_dashboard_query_names_a_metric_chatbus_serves() -> None:
    served = served_names()
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len(panels) >= 10
    for panel in panels:
        for target in panel["targets"]:
            for name in re.findall(r"\bchatbus_[a-z_]+", target["expr"]):
                assert name in served or family(name) in served, (
                    f"panel {panel['title']!r} asks for {name}, which is not served"
                )


def test_every_served_metric_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"`(chatbus_[a-z_]+)`", README.read_text()))
    for name in served_names():
        assert family(name) in documented, f"{name} is served but not in the README's list"
