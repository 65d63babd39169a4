"""Delete my data removes everything of a session from the server's disk: uploads, analysis,
LoRA checkpoints and weights, generated images, reviews, exports, and the web server's cached
copies of all of them. A scan of the whole data folder and Gradio cache proves it."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from tests.test_app import CHROMIUM, CHROMIUM_ARGS, FACES, _browser, api_params, start_app


def _hashes(root: Path) -> dict[str, Path]:
    out = {}
    for f in root.rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            out[hashlib.sha256(f.read_bytes()).hexdigest()] = f
    return out


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    cache = tmp_path_factory.mktemp("gradio-cache")
    with start_app(tmp_path_factory, GRADIO_TEMP_DIR=str(cache)) as (url, data_dir, _, _):
        yield url, Path(data_dir), cache


def test_delete_my_data_leaves_nothing_on_disk(app):
    from gradio_client import Client, handle_file

    url, data_dir, cache = app
    keep = Client(url, verbose=False, download_files=False)  # another user, who keeps their data
    keep.predict([handle_file(str(FACES / "p02_img8.jpg"))], api_name="/check_capture")

    client = Client(url, verbose=False, download_files=False)
    photos = [FACES / f"p05_img{i}.jpg" for i in (34, 35, 36)]
    client.predict([handle_file(str(p)) for p in photos], api_name="/check_capture")
    client.predict([p.name for p in photos], api_name="/confirm_selection")
    base = api_params(client, "/train")[0]["parameter_default"]
    client.predict(base, 2, 4, api_name="/train")
    params = api_params(client, "/generate")
    values = {"Style preset": "linkedin", "Seed": 3, "Images": 1}
    client.predict(*[values.get(p["label"], p.get("parameter_default")) for p in params], api_name="/generate")
    client.predict("", False, False, [handle_file(str(FACES / "p05_img37.jpg"))], api_name="/review")
    client.predict(["avatar"], "Ada", "Lovelace", False, [], api_name="/export")

    sessions = sorted((Path(data_dir) / "sessions").iterdir())
    assert len(sessions) == 2
    mine = max(sessions, key=lambda d: sum(1 for _ in d.rglob("*")))  # the one with a LoRA and results
    assert (mine / "lora").is_dir() and any((mine / "results").iterdir()) and any(mine.rglob("*.zip"))
    private = _hashes(mine)
    private.update({hashlib.sha256(p.read_bytes()).hexdigest(): p for p in [*photos, FACES / "p05_img37.jpg"]})
    assert set(private) & set(_hashes(cache)), "the cache should hold copies before the delete"
    others = _hashes(next(d for d in sessions if d != mine))

    client.predict(None, None, api_name="/delete_photos")

    assert not mine.exists()
    left = {h: p for h, p in {**_hashes(Path(data_dir)), **_hashes(cache)}.items() if h in private}
    assert left == {}, f"files of the deleted session remain: {sorted(map(str, left.values()))}"
    assert set(others) <= set(_hashes(Path(data_dir)))  # the other user's data is untouched


def test_closing_the_tab_removes_the_session_and_its_cached_copies(app):
    """Gradio's unload event (the tab closes) deletes the session folder and the server's copies."""
    from playwright.sync_api import expect

    url, data_dir, cache = app
    photo = FACES / "p06_img21.jpg"
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    before = set((data_dir / "sessions").iterdir()) if (data_dir / "sessions").exists() else set()
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            page.locator("#capture-upload input[type=file]").set_input_files([str(photo)])
            page.locator('#capture-upload td.filename[aria-label="p06_img21.jpg"]').wait_for(timeout=30_000)
            page.locator("#check-button").click()
            expect(page.locator("#capture-summary")).to_contain_text("Capture set", timeout=90_000)
            (new,) = set((data_dir / "sessions").iterdir()) - before
            assert digest in _hashes(new) and digest in _hashes(cache)
            page.close(run_before_unload=True)
        finally:
            browser.close()
    deadline = time.time() + 30  # the server notices the closed connection, then runs the unload handler
    while new.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert not new.exists()
    assert digest not in _hashes(cache)
