"""The page's status marks are its own drawings, readable on a machine without an emoji font.

Chromium runs here with the system's default fonts and every emoji or colour
font refused (a fontconfig file of its own), as on a fresh Linux desktop or a
locked-down office PC. A control shows that such a browser draws ✅ without
its green: the marks the page shows must not depend on that. Each mark
(people's and agents' states, the legend, the connection, the done / stopped /
warning marks at the start of agents' messages) is checked in a screenshot:
the pixels in its colour are exactly where its SVG shapes are, so a blank
box, a missing-glyph box or a glyph from some other font all fail.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import CHROMIUM, CHROMIUM_ARGS, ChatServer, Pages, message_items, screenshot, send
from .test_chat_page import _axe_violations as axe_violations

#: Fontconfig for Chromium: the system's fonts and settings, without any emoji or colour font.
FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/conf.d</include>
  <dir>/usr/share/fonts</dir>
  <cachedir>{cache}</cachedir>
  <selectfont>
    <rejectfont>
      <glob>*[Ee]moji*</glob>
      <glob>*EMOJI*</glob>
      <glob>*Symbola*</glob>
      <pattern><patelt name="color"><bool>true</bool></patelt></pattern>
    </rejectfont>
  </selectfont>
</fontconfig>
"""

#: The geometry of a mark, sampled in the page at the centre of each device pixel of its box
#: (widened to whole CSS pixels): 1 where the shapes cover the pixel and its four neighbours,
#: 0 where they cover none of them, -1 on an edge (anti-aliased, not judged).
SHAPE_MASK = """
svg => {
  const box = svg.getBoundingClientRect();
  const scale = window.devicePixelRatio;
  const toShape = svg.getScreenCTM().inverse();
  const shapes = [...svg.children];
  const left = Math.floor(box.left) * scale;
  const top = Math.floor(box.top) * scale;
  const width = Math.ceil(box.right) * scale - left;
  const height = Math.ceil(box.bottom) * scale - top;
  const covered = [];
  for (let row = -1; row <= height; row += 1) {
    const line = [];
    for (let column = -1; column <= width; column += 1) {
      const point = new DOMPoint((left + column + 0.5) / scale, (top + row + 0.5) / scale).matrixTransform(toShape);
      line.push(shapes.some((shape) =>
        (shape.getAttribute("fill") !== "none" && shape.isPointInFill(point)) ||
        (shape.hasAttribute("stroke") && shape.isPointInStroke(point))));
    }
    covered.push(line);
  }
  const mask = [];
  for (let row = 1; row <= height; row += 1) {
    for (let column = 1; column <= width; column += 1) {
      const around = [covered[row][column], covered[row - 1][column], covered[row + 1][column], covered[row][column - 1], covered[row][column + 1]];
      mask.push(around.every(Boolean) ? 1 : around.some(Boolean) ? -1 : 0);
    }
  }
  return { region: { left, top, width, height }, scale, mask, color: getComputedStyle(svg).color };
}
"""

#: The pixels (RGBA) of regions of a PNG, decoded by the browser on a blank page; the whole image without regions.
DECODE_PNG = """
async ([source, regions]) => {
  const image = new Image();
  image.src = "data:image/png;base64," + source;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const wanted = regions || [{ left: 0, top: 0, width: image.width, height: image.height }];
  return wanted.map(({ left, top, width, height }) => ({
    inside: left >= 0 && top >= 0 && left + width <= image.width && top + height <= image.height,
    data: Array.from(context.getImageData(left, top, width, height).data),
  }));
}
"""

#: ✅ drawn as text, big, on a blank page of the same browser.
EMOJI_AS_TEXT = """
() => {
  const span = document.createElement("span");
  span.textContent = "\\u2705";
  span.style.font = "64px sans-serif";
  span.id = "emoji";
  document.body.append(span);
}
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium with the default fonts only: no emoji font, no colour font."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install it with `apt-get install chromium`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("fonts")
    conf = folder / "fonts.conf"
    conf.write_text(FONTS_CONF.format(cache=folder / "cache"), encoding="utf-8")
    env = {**os.environ, "FONTCONFIG_FILE": str(conf)}
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env)
        try:
            yield launched
        finally:
            launched.close()


def pixels(scratch: Any, png: bytes, regions: list[dict[str, int]] | None = None) -> list[dict[str, Any]]:
    """The RGBA pixels of ``regions`` of ``png`` (device pixels), or of all of it."""
    found: list[dict[str, Any]] = scratch.evaluate(DECODE_PNG, [base64.b64encode(png).decode(), regions])
    return found


def rgb(css: str) -> tuple[int, int, int]:
    red, green, blue = (int(float(part)) for part in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return red, green, blue


def check_drawn(page: Any, scratch: Any, marks: list[tuple[Any, str]]) -> None:
    """Each mark (a page mark holding an SVG, with what it is) shows its shapes, in its colour, in one screenshot."""
    shapes = []
    for mark, what in marks:
        expect(mark).to_be_visible()
        svg = mark.locator("svg")
        box = svg.bounding_box()
        assert box is not None and box["width"] >= 10 and box["height"] >= 10, f"{what}: drawn at {box}"
        shapes.append(svg.evaluate(SHAPE_MASK))
    # One screenshot of the smallest area holding them all, in whole CSS pixels.
    scale = shapes[0]["scale"]
    left = min(shape["region"]["left"] for shape in shapes)
    top = min(shape["region"]["top"] for shape in shapes)
    right = max(shape["region"]["left"] + shape["region"]["width"] for shape in shapes)
    bottom = max(shape["region"]["top"] + shape["region"]["height"] for shape in shapes)
    clip = {"x": left / scale, "y": top / scale, "width": (right - left) / scale, "height": (bottom - top) / scale}
    regions = [
        {**shape["region"], "left": shape["region"]["left"] - left, "top": shape["region"]["top"] - top}
        for shape in shapes
    ]
    shot = pixels(scratch, page.screenshot(clip=clip), regions)
    for (_, what), shape, drawn in zip(marks, shapes, shot, strict=True):
        assert drawn["inside"], f"{what} is not in the window"
        data = drawn["data"]
        ink = rgb(shape["color"])
        inked = [math.dist(ink, data[i * 4 : i * 4 + 3]) < 60 for i in range(len(data) // 4)]
        inside = [inked[i] for i, cell in enumerate(shape["mask"]) if cell == 1]
        outside = [inked[i] for i, cell in enumerate(shape["mask"]) if cell == 0]
        assert len(inside) >= 0.05 * len(inked), f"{what}: the shapes cover almost nothing"
        assert sum(inside) / len(inside) > 0.9, (
            f"{what}: only {sum(inside)} of {len(inside)} pixels of its shapes are drawn"
        )
        assert sum(outside) / len(outside) < 0.03, f"{what}: {sum(outside)} pixels in its colour lie outside its shapes"


def test_a_browser_without_emoji_fonts_draws_no_green_check(browser: Any) -> None:
    """The control: in this browser an emoji in text is no help, so every mark must be the page's own."""
    page = browser.new_page()
    try:
        page.evaluate(EMOJI_AS_TEXT)
        data = pixels(page, page.locator("#emoji").screenshot())[0]["data"]
        green = sum(1 for i in range(0, len(data), 4) if data[i + 1] > data[i] + 60 and data[i + 1] > data[i + 2] + 60)
        assert green == 0, "this Chromium still has a colour emoji font: the fontconfig file did not keep it out"
    finally:
        page.close()


AGENTS = [
    ("idler", "idle", None, None),
    ("builder", "working", "write the changelog", 30),
    ("helper", "stuck", "fix the flaky test", 60),
    ("planner", "completed", "plan the launch", 100),
]

AGENT_TEXTS = [
    ("builder", "\u2705 Completed: write the changelog\nwrote CHANGELOG.md", "Done", "Completed: write the changelog"),
    (
        "helper",
        "\u23f9\ufe0f Stopped fix the flaky test: it was still running after 10 minutes.",
        "Stopped",
        "Stopped fix",
    ),
    ("planner", "\u26a0\ufe0f I was working on plan the launch when the server stopped.", "Warning", "I was working"),
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_mark_is_the_pages_own_drawing(pages: Pages, server: ChatServer, scheme: str) -> None:
    hub = server.hub
    assert hub is not None
    for name, status, task, progress in AGENTS:
        server.call(hub.hire(name, "developer"))
        server.call(hub.set_agent_status(name, status, task, progress))
    # Tall enough for the whole list and its legend: every mark is in one screenshot.
    page = pages.join("alice", "developer", scheme=scheme, device_scale_factor=2, height=1150)
    pages.join("bob")
    for sender, text, _, _ in AGENT_TEXTS:
        server.call(hub.send(text, sender=sender))
    send(page, "\u2705 typed by a person stays as typed")
    expect(message_items(page)).to_have_count(4)
    marks: list[tuple[Any, str]] = []
    scratch = page.context.new_page()

    # Agents' leading marks are icons with a name, and the emoji is gone from the text shown.
    for sender, _, label, start in AGENT_TEXTS:
        item = message_items(page).filter(has=page.locator(".msg-sender", has_text=sender))
        expect(item.get_by_role("img", name=label)).to_have_count(1)
        assert (item.locator(".msg-text").text_content() or "").startswith(start)
        marks.append((item.get_by_role("img", name=label), f"the {label} mark of {sender}'s message"))
    expect(message_items(page).last.locator(".msg-text")).to_have_text("\u2705 typed by a person stays as typed")

    check_drawn(page, scratch, marks)

    # Each agent's state, and a person online, in the list.
    marks = []
    for name, status, _, _ in AGENTS:
        member = page.locator("#agents-list .member", has_text=name)
        expect(member.get_by_role("img", name=status)).to_have_count(1)
        marks.append((member.get_by_role("img", name=status), f"{name}'s {status} mark"))
    bob = page.locator("#people-list .member", has_text="bob")
    marks.append((bob.get_by_role("img", name="online"), "bob's online mark"))

    # The legend draws the same marks, each beside its word.
    for name in ("online", "offline", "idle", "working", "stuck", "completed"):
        item = page.locator(f'#legend .legend-item[data-icon="{name}"]')
        expect(item).to_contain_text(name)
        marks.append((item.locator(".icon"), f"the legend's {name} mark"))

    # The connection's mark while connected.
    marks.append((page.locator("#connection-mark .icon-online"), "the connection's online mark"))
    check_drawn(page, scratch, marks)
    screenshot(page, f"marks-default-fonts-{scheme}")
    assert axe_violations(page) == []

    # Offline once the server is gone (it alternates with the connecting mark as the page
    # retries; its drawing is the legend's, checked above).
    server.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "waiting")
    expect(page.locator("#connection-mark .icon-offline")).to_be_visible()


def test_the_shapes_check_fails_for_a_missing_glyph(pages: Pages) -> None:
    """The check above can fail: a mark whose SVG is hidden behind a text glyph is caught."""
    page = pages.join("alice")
    scratch = page.context.new_page()
    mark = page.locator("#connection-mark .icon")
    mark.evaluate(
        "node => { node.querySelector('svg').style.visibility = 'hidden';"
        " const glyph = document.createElement('span'); glyph.textContent = '\\u2705';"
        " glyph.style.position = 'absolute'; node.style.position = 'relative'; node.append(glyph); }"
    )
    with pytest.raises(AssertionError, match="pixels of its shapes are drawn"):
        check_drawn(page, scratch, [(mark, "a mark drawn as text")])
