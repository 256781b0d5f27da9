"""The web page's ES modules stay as the split left them: loaded as modules, safe, small.

These read the files only; the browser tests show the page works.
"""

from __future__ import annotations

import re

import pytest

from chatbus.transports.websocket.http import STATIC_ROOT

MODULES = STATIC_ROOT / "js"
MAX_MODULE_LINES = 400
#: Ways to turn a string into page markup; the page only ever uses text nodes and properties.
HTML_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "DOMParser", "createContextualFragment")
SAFETY_RULE = "only ever put on the page with textContent, text nodes or attribute properties, never as HTML"


def module_names() -> list[str]:
    return sorted(path.name for path in MODULES.glob("*.js"))


def test_index_loads_main_as_a_module_and_preloads_every_other_module() -> None:
    page = (STATIC_ROOT / "index.html").read_text(encoding="utf-8")
    assert '<script type="module" src="/static/js/main.js"></script>' in page
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts == ['<script type="module" src="/static/js/main.js">']
    preloaded = sorted(re.findall(r'<link rel="modulepreload" href="/static/js/([^"]+)">', page))
    assert preloaded == [name for name in module_names() if name != "main.js"]


@pytest.mark.parametrize("name", module_names())
def test_module_is_small_and_never_builds_html_from_strings(name: str) -> None:
    source = (MODULES / name).read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    assert [sink for sink in HTML_SINKS if sink in source] == []
    if "document." in source or "./dom.js" in source:
        header = " ".join(re.sub(r"[/*\s]+", " ", source.split("*/", 1)[0]).split())
        assert SAFETY_RULE in header, "a module that renders states the safety rule at its top"


def test_protocol_module_does_not_reach_for_the_page() -> None:
    source = (MODULES / "protocol.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.DOTALL)
    assert re.findall(r"\b(document|window|localStorage|location|navigator)\b", code) == []
    assert "import " not in code, "protocol.js stands alone"
