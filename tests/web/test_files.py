"""Files and pictures on the chat page, in a real Chromium against a real chatbus server.

Sending: the attach button (the browser's file chooser), files dropped on the
chat and a picture pasted into it become chips above the message box, are
uploaded with ``POST /files`` (progress bar, Cancel) and go out with the next
message. Showing: pictures inline as thumbnails that open full size, other
files as a card whose link downloads them. Refusals are explained; all of it
works by keyboard, passes axe in light and dark, and fits a 375 px phone.
"""

from __future__ import annotations

import hashlib
import io
import re
import wave
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from chatbus.core.message import Attachment, Identity

from .conftest import ChatServer, Pages, message_items, running_hub, screenshot, send, wait_until
from .test_chat_page import _axe_violations as axe_violations

BOB = Identity("bob", "designer")
PHONE: dict[str, Any] = {"width": 375, "height": 667, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def png(width: int = 640, height: int = 480, colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def wav(seconds: float = 0.5) -> bytes:
    """A short silent sound, as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(bytes(2 * int(8000 * seconds)))
    return out.getvalue()


def file_id(data: bytes) -> str:
    """The id the server gives these bytes (content-addressed)."""
    return hashlib.sha256(data).hexdigest()[:32]


def bob_sends(server: ChatServer, text: str, files: list[tuple[bytes, str, str]]) -> list[Attachment]:
    """Bob uploads ``files`` (bytes, name, type) and sends them with ``text``."""
    hub = running_hub(server)

    async def run() -> list[Attachment]:
        saved = [await hub.files.save_bytes(data, name, kind, uploader="bob") for data, name, kind in files]
        await hub.receive(BOB, text, attachments=[a.id for a in saved])
        return saved

    return server.call(run())


def stored(server: ChatServer, data: bytes) -> bool:
    """Whether the server keeps a file with these bytes."""
    hub = running_hub(server)
    return server.call(hub.files.get(file_id(data))) is not None


# ----------------------------------------------------------------- showing
def test_a_picture_is_shown_inline_and_opens_full_size_and_a_file_is_a_card(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    picture, report = bob_sends(
        server,
        "the mock-up and the notes",
        [(png(), "mock up.png", "image/png"), (pdf(), "notes.pdf", "application/pdf")],
    )
    message = message_items(alice, "the mock-up and the notes")
    expect(message).to_have_count(1)

    # The picture: a thumbnail in a box of its own shape (so nothing jumps), named by its file name.
    thumb = message.get_by_role("img", name="mock up.png")
    expect(thumb).to_have_attribute("src", picture.url + "?thumb=1")
    expect(thumb).to_have_attribute("width", "320")
    expect(thumb).to_have_attribute("height", "240")
    link = message.get_by_role(
        "link", name=re.compile(r"^mock up\.png \(picture, [\d.]+ (bytes|KB); opens full size\)$")
    )
    expect(link).to_have_attribute("href", picture.url)

    # Selecting it opens the full picture in a dialog; Escape closes it and the focus returns.
    link.focus()
    alice.keyboard.press("Enter")
    dialog = alice.get_by_role("dialog", name="mock up.png")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("img", name="mock up.png")).to_have_attribute("src", picture.url)
    expect(dialog).to_contain_text("640 × 480 pixels")
    expect(dialog.get_by_role("link", name="Open in a new tab")).to_have_attribute("href", picture.url)
    expect(dialog.get_by_role("button", name="Close the picture")).to_be_focused()
    alice.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(link).to_be_focused()

    # The other file: a card with its name, kind, size and a download link.
    card = message.locator(".att-file")
    expect(card.locator(".att-file-name")).to_have_text("notes.pdf")
    expect(card.locator(".att-file-details")).to_have_text(f"PDF · {report.size} bytes")
    download = card.get_by_role("link", name=re.compile(r"^Download notes\.pdf"))
    expect(download).to_have_attribute("href", report.url)
    expect(download).to_have_attribute("download", "notes.pdf")


def test_a_sound_gets_a_player_beside_its_card(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    (sound,) = bob_sends(server, "listen to this", [(wav(0.5), "voice note.wav", "audio/wav")])
    message = message_items(alice, "listen to this")
    expect(message.locator(".att-file-name")).to_have_text("voice note.wav")
    expect(message.locator(".att-file-details")).to_contain_text("audio · ")
    player = message.locator("audio")
    expect(player).to_have_attribute("aria-label", "Play voice note.wav")
    expect(player).to_have_attribute("src", sound.url)
    # Nothing is fetched until it is played; then it plays from the server (ranges and all).
    assert player.evaluate("audio => audio.readyState") == 0
    player.evaluate("audio => { audio.preload = 'metadata'; audio.load(); }")
    wait_until(alice, "() => document.querySelector('#messages audio').readyState >= 1")
    assert abs(player.evaluate("audio => audio.duration") - 0.5) < 0.05


def test_names_and_addresses_from_the_network_are_never_markup_or_elsewhere(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    bob_sends(server, "odd names", [(b"hello\n", "<img src=x onerror=alert(1)>.txt", "text/plain")])
    message = message_items(alice, "odd names")
    expect(message.locator(".att-file-name")).to_contain_text("<img src=x")
    expect(message.locator(".att-file img")).to_have_count(0)
    # Attachments pointing anywhere but this server's /files/ are not shown at all.
    shown = alice.evaluate(
        """async () => {
            const { readAttachments } = await import("/static/js/attachments.js");
            const entry = (url) => ({ id: "x", name: "x.png", size: 1, contentType: "image/png", url });
            return readAttachments(["https://evil.example/files/x.png", "//evil.example/files/a/x.png", "javascript:alert(1)",
              "/files/../static/index.html", "/static/x.png", "/files/abc/x.png"].map(entry)).map((a) => a.url);
        }"""
    )
    assert shown == ["/files/abc/x.png"]


def test_a_message_of_files_only_is_quoted_and_read_out_by_its_files(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    bob_sends(server, "", [(png(40, 30), "dot.png", "image/png")])
    message = message_items(alice).last
    expect(message.get_by_role("img", name="dot.png")).to_be_visible()
    expect(alice.locator("#announcer")).to_contain_text("bob: sent picture dot.png")
    message.focus()
    message.press("r")
    expect(alice.locator("#reply-preview")).to_contain_text("picture dot.png")


def test_files_come_back_with_the_history_and_go_with_a_deleted_message(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    bob_sends(server, "keep this one", [(png(300, 200), "kept.png", "image/png")])
    bob_sends(server, "oops, wrong file", [(pdf(), "salaries.pdf", "application/pdf")])
    wrong = message_items(alice, "oops, wrong file")
    expect(wrong.locator(".att-file-name")).to_have_text("salaries.pdf")
    hub = running_hub(server)
    server.call(hub.delete(BOB, int(wrong.get_attribute("data-id") or 0)))
    expect(alice.locator(".msg-tombstone")).to_have_count(1)
    expect(alice.locator("#messages").get_by_text("salaries.pdf")).to_have_count(0)

    alice.reload()
    kept = message_items(alice, "keep this one")
    expect(kept.get_by_role("img", name="kept.png")).to_have_attribute("width", "300")
    wait_until(
        alice,
        "() => { const i = document.querySelector('#messages .att-picture-img'); return i.complete && i.naturalWidth > 0; }",
    )
    expect(alice.locator("#messages").get_by_text("salaries.pdf")).to_have_count(0)


# ----------------------------------------------------------------- sending
def attach(page: Any, files: list[dict[str, Any]]) -> None:
    """Choose ``files`` (name, mimeType, buffer) with the attach button, as a person does."""
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files(files)


def chips(page: Any) -> Any:
    return page.get_by_role("list", name="Files to send with your message").get_by_role("listitem")


def drop_files(page: Any, files: list[tuple[str, str, str]]) -> None:
    """Drag files (name, type, text) over the chat, check the hint, and drop them on it."""
    make = """(files) => { const dt = new DataTransfer();
        for (const [name, type, text] of files) dt.items.add(new File([text], name, { type }));
        return dt; }"""
    page.evaluate(
        f"""(files) => {{ const dt = ({make})(files);
            document.getElementById("log").dispatchEvent(new DragEvent("dragenter", {{ dataTransfer: dt, bubbles: true, cancelable: true }})); }}""",
        files,
    )
    expect(page.get_by_text("Drop files here to attach them to your message")).to_be_visible()
    page.evaluate(
        f"""(files) => {{ const dt = ({make})(files);
            document.getElementById("log").dispatchEvent(new DragEvent("drop", {{ dataTransfer: dt, bubbles: true, cancelable: true }})); }}""",
        files,
    )
    expect(page.get_by_text("Drop files here to attach them to your message")).to_be_hidden()


def paste_picture(page: Any, data: bytes, name: str = "image.png") -> None:
    """Paste a PNG into the message box as a browser does with a copied picture."""
    page.evaluate(
        """([bytes, name]) => { const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, { type: "image/png" }));
            const box = document.getElementById("composer-input");
            box.focus();
            box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true })); }""",
        [list(data), name],
    )


def test_a_picture_attached_with_the_button_reaches_the_other_person_inline(pages: Pages) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    # The attach button comes right after the message box, by keyboard too.
    alice.get_by_label("Message", exact=True).focus()
    alice.keyboard.press("Tab")
    expect(alice.get_by_role("button", name="Attach files")).to_be_focused()
    with alice.expect_file_chooser() as chooser:
        # Playwright turns on catching the file chooser a moment after this listens for it; a
        # mouse click takes long enough anyway, a key press needs a round trip first.
        alice.evaluate("0")
        alice.keyboard.press("Enter")
    chooser.value.set_files([{"name": "sunset.png", "mimeType": "image/png", "buffer": png(800, 600, "orange")}])
    expect(chips(alice)).to_have_count(1)
    expect(chips(alice)).to_contain_text("sunset.png")
    # Once uploaded it can be removed (no longer cancelled); the text is optional.
    expect(chips(alice).get_by_role("button", name="Remove sunset.png")).to_be_visible()
    alice.get_by_label("Message", exact=True).press("Enter")
    expect(alice.locator("#tray")).to_be_hidden()

    on_bob = message_items(bob).last
    thumb = on_bob.get_by_role("img", name="sunset.png")
    expect(thumb).to_have_attribute("src", re.compile(r"^/files/[0-9a-f]{32}/sunset\.png\?thumb=1$"))
    expect(thumb).to_have_attribute("width", "320")
    expect(thumb).to_have_attribute("height", "240")
    wait_until(
        bob,
        "() => { const i = document.querySelector('#messages .att-picture-img'); return i.complete && i.naturalWidth > 0; }",
    )
    assert 0 < bob.evaluate("document.querySelector('#messages .att-picture-img').naturalWidth") < 800
    expect(message_items(alice).last.get_by_role("img", name="sunset.png")).to_be_visible()

    thumb.click()
    expect(bob.get_by_role("dialog", name="sunset.png")).to_be_visible()
    wait_until(bob, "() => document.getElementById('image-dialog-picture').naturalWidth === 800")
    screenshot(bob, "files-picture-full-size")
    bob.keyboard.press("Escape")
    expect(bob.get_by_role("dialog", name="sunset.png")).to_be_hidden()
    screenshot(bob, "files-picture-inline")


def test_dropped_files_and_a_pasted_picture_go_out_with_the_text(pages: Pages) -> None:
    alice = pages.join("alice")
    bob = pages.join("bob")
    drop_files(alice, [("notes.txt", "text/plain", "first line\nsecond line\n")])
    paste_picture(alice, png(120, 90, "purple"))
    expect(chips(alice)).to_have_count(2)
    expect(chips(alice).get_by_role("button", name=re.compile("^Remove "))).to_have_count(2)
    send(alice, "the notes and a screenshot")

    message = message_items(bob, "the notes and a screenshot")
    expect(message.get_by_role("img", name="image.png")).to_be_visible()
    card = message.locator(".att-file")
    expect(card.locator(".att-file-name")).to_have_text("notes.txt")
    expect(card.locator(".att-file-details")).to_have_text("text · 23 bytes")
    with bob.expect_download() as downloading:
        card.get_by_role("link", name=re.compile(r"^Download notes\.txt")).click()
    download = downloading.value
    assert download.suggested_filename == "notes.txt"
    with open(download.path(), "rb") as saved:
        assert saved.read() == b"first line\nsecond line\n"


def test_a_slow_upload_shows_its_progress_and_cancel_stops_it(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    network = alice.context.new_cdp_session(alice)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 10, "downloadThroughput": -1, "uploadThroughput": 512 * 1024},
    )
    data = b"a line of a long log file\n" * (160 * 1024)  # 4 MiB: about eight seconds at this speed
    attach(alice, [{"name": "big.log.txt", "mimeType": "text/plain", "buffer": data}])
    bar = alice.get_by_role("progressbar", name="Uploading big.log.txt")
    expect(bar).to_be_visible()
    wait_until(alice, "() => { const bar = document.querySelector('#tray progress'); return bar && bar.value > 0; }")
    expect(chips(alice)).to_contain_text(re.compile(r"\d+% of 4.1 MB"))
    screenshot(alice, "files-uploading")
    assert axe_violations(alice) == []
    # Sending meanwhile waits for the upload, and says so.
    send(alice, "the log")
    expect(alice.locator("#tray-note")).to_have_text("Your message goes out as soon as the files are uploaded.")
    alice.get_by_role("button", name="Cancel the upload of big.log.txt").click()
    expect(chips(alice)).to_have_count(0)
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()
    expect(alice.locator("#announcer")).to_contain_text("The upload of big.log.txt was cancelled.")
    # Nothing was kept, and the text went out alone once nothing was left to wait for.
    expect(message_items(alice, "the log")).to_have_count(1)
    assert not stored(server, data)


def test_a_file_of_a_refused_type_is_explained_and_kept_out_of_the_message(pages: Pages) -> None:
    alice = pages.join("alice")
    attach(alice, [{"name": "setup.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ" + bytes(200)}])
    expect(alice.locator("#error-line")).to_contain_text("“setup.exe” was not uploaded:")
    chip = chips(alice).filter(has_text="setup.exe")
    expect(chip).to_contain_text("Not uploaded: type not taken")
    expect(chip.get_by_role("button", name="Upload setup.exe again")).to_have_count(0)
    # Sending first asks to deal with it; nothing goes out.
    send(alice, "an installer")
    expect(alice.locator("#error-line")).to_contain_text("try it again or remove it, then send")
    expect(message_items(alice)).to_have_count(0)
    chip.get_by_role("button", name="Remove setup.exe").click()
    expect(alice.locator("#tray")).to_be_hidden()
    expect(alice.get_by_label("Message", exact=True)).to_be_focused()
    alice.get_by_label("Message", exact=True).press("Enter")
    expect(message_items(alice, "an installer")).to_have_count(1)
    expect(message_items(alice, "an installer").locator(".msg-attachments")).to_have_count(0)


def test_a_name_with_a_direction_override_neither_hides_its_type_nor_turns_the_error_line(pages: Pages) -> None:
    # "report\u202egnp.txt" shows as "reporttxt.png" and turns everything after it backwards.
    alice = pages.join("alice")
    attach(alice, [{"name": "report\u202egnp.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    expect(alice.locator("#error-line")).to_contain_text(
        "“report\ufffdgnp.txt” was not uploaded: The file name contains control characters"
    )
    assert "\u202e" not in alice.locator("#error-line").inner_text()
    chip = chips(alice).filter(has_text="report\ufffdgnp.txt")
    expect(chip).to_contain_text("Not uploaded: not a valid file")
    assert "\u202e" not in chip.inner_text()


def test_an_upload_cut_off_by_the_network_can_be_tried_again(pages: Pages) -> None:
    alice = pages.join("alice")
    alice.route("**/files", lambda route: route.abort("internetdisconnected"))
    attach(alice, [{"name": "minutes.md", "mimeType": "text/markdown", "buffer": b"# Minutes\n"}])
    expect(alice.locator("#error-line")).to_contain_text(
        "“minutes.md” was not uploaded: the connection to the server failed"
    )
    chip = chips(alice).filter(has_text="minutes.md")
    expect(chip).to_contain_text("Not uploaded: no connection")
    alice.unroute("**/files")
    chip.get_by_role("button", name="Upload minutes.md again").click()
    expect(chip.get_by_role("button", name="Remove minutes.md")).to_be_visible()
    expect(chip.get_by_role("button", name="Remove minutes.md")).to_be_focused()
    send(alice, "minutes")
    expect(message_items(alice, "minutes").locator(".att-file-name")).to_have_text("minutes.md")


@pytest.mark.parametrize("server_options", [{"files": {"max_file_bytes": 2000}}])
def test_a_file_over_the_limit_is_explained(pages: Pages, server: ChatServer) -> None:
    # The server tells the page its limit when it signs in: the file is not even sent.
    alice = pages.join("alice")
    data = b"1,2,3\n" * 1000
    attach(alice, [{"name": "big.csv", "mimeType": "text/csv", "buffer": data}])
    expect(alice.locator("#error-line")).to_contain_text("“big.csv” is 5.9 KB, more than the 2 KB this chat takes.")
    expect(chips(alice)).to_have_count(0)
    assert not stored(server, data)


def test_at_most_ten_files_go_into_one_message_and_all_of_them_arrive(pages: Pages) -> None:
    alice = pages.join("alice")
    attach(
        alice,
        [{"name": f"part-{n}.txt", "mimeType": "text/plain", "buffer": f"part {n}\n".encode()} for n in range(12)],
    )
    expect(chips(alice)).to_have_count(10)
    expect(alice.locator("#error-line")).to_contain_text("One message takes at most 10 files, so 2 were left out")
    # They upload a few at a time (the server takes four per address at once), and all ten go out.
    send(alice, "ten parts")
    expect(message_items(alice, "ten parts").locator(".att-file")).to_have_count(10, timeout=20_000)
    expect(alice.locator("#tray")).to_be_hidden()


@pytest.mark.parametrize("server_options", [{"files": {"max_per_message": 2}, "max_text_length": 12}])
def test_a_message_the_server_refuses_gives_its_text_and_files_back(pages: Pages) -> None:
    alice = pages.join("alice")
    attach(
        alice, [{"name": f"page-{n}.txt", "mimeType": "text/plain", "buffer": f"page {n}\n".encode()} for n in range(3)]
    )
    # The page knows the server takes two files per message.
    expect(alice.locator("#error-line")).to_contain_text("One message takes at most 2 files, so 1 was left out")
    expect(chips(alice).get_by_role("button", name=re.compile("^Remove "))).to_have_count(2)
    send(alice, "the first two pages")
    # Too long for this server: its words say so, and the text and both files are back.
    expect(alice.locator("#error-line")).to_contain_text("Your message was not sent:")
    expect(alice.get_by_label("Message", exact=True)).to_have_value("the first two pages")
    expect(chips(alice)).to_have_count(2)
    expect(message_items(alice)).to_have_count(0)
    alice.get_by_label("Message", exact=True).fill("two pages")
    alice.get_by_label("Message", exact=True).press("Enter")
    expect(message_items(alice, "two pages").locator(".att-file")).to_have_count(2)


@pytest.mark.parametrize(
    "server_options",
    [{"auth": {"mode": "token", "tokens": {"s3cret-token": {"userId": "alice", "role": "developer"}}}}],
)
def test_uploads_carry_the_token_in_token_mode(pages: Pages) -> None:
    alice = pages.join("alice", token="s3cret-token")
    attach(alice, [{"name": "plan.md", "mimeType": "text/markdown", "buffer": b"# Plan\n"}])
    expect(chips(alice).get_by_role("button", name="Remove plan.md")).to_be_visible()
    send(alice, "the plan")
    expect(message_items(alice, "the plan").locator(".att-file-name")).to_have_text("plan.md")


# ----------------------------------------------------------------- everyone, everywhere
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_files_pass_the_accessibility_checks(pages: Pages, server: ChatServer, scheme: str) -> None:
    alice = pages.join("alice", scheme=scheme)
    bob_sends(
        server,
        "a picture, a report and a voice note",
        [
            (png(), "chart.png", "image/png"),
            (pdf(), "report.pdf", "application/pdf"),
            (wav(), "voice.wav", "audio/wav"),
        ],
    )
    expect(
        message_items(alice, "a picture, a report and a voice note").get_by_role("img", name="chart.png")
    ).to_be_visible()
    attach(alice, [{"name": "table.csv", "mimeType": "text/csv", "buffer": b"a,b\n1,2\n"}])
    attach(alice, [{"name": "tool.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ" + bytes(50)}])
    expect(chips(alice).get_by_role("button", name="Remove table.csv")).to_be_visible()
    expect(chips(alice).filter(has_text="tool.exe")).to_contain_text("Not uploaded")
    # The chips and the error line above the box leave the latest message in view.
    expect(message_items(alice).last.locator("audio")).to_be_in_viewport(ratio=1)
    screenshot(alice, f"files-{scheme}")
    assert axe_violations(alice) == []
    message_items(alice, "a picture, a report and a voice note").get_by_role("img", name="chart.png").click()
    expect(alice.get_by_role("dialog", name="chart.png")).to_be_visible()
    assert axe_violations(alice) == []


def test_files_fit_a_phone(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice", **PHONE)
    bob_sends(
        server,
        "from the field",
        [
            (png(1600, 900), "panorama.png", "image/png"),
            (pdf(), "a-rather-long-name-for-the-quarterly-report-2026.pdf", "application/pdf"),
        ],
    )
    message = message_items(alice, "from the field")
    expect(message.get_by_role("img", name="panorama.png")).to_be_visible()
    attach(
        alice, [{"name": "a-long-name-for-the-site-survey-photos.txt", "mimeType": "text/plain", "buffer": b"survey\n"}]
    )
    expect(chips(alice)).to_have_count(1)
    for part in (message.locator(".att-picture-img"), message.locator(".att-file"), chips(alice)):
        box = part.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    assert alice.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(alice, "files-phone")
    message.get_by_role("img", name="panorama.png").tap()
    dialog = alice.get_by_role("dialog", name="panorama.png")
    expect(dialog).to_be_visible()
    for part in (
        dialog,
        dialog.get_by_role("img", name="panorama.png"),
        dialog.get_by_role("button", name="Close the picture"),
    ):
        box = part.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    screenshot(alice, "files-phone-full-size")
