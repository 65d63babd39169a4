"""The capture step through the running app: gradio_client and a real headless Chromium."""
from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.tiny_fixtures import tiny_sdxl_dir
from tools.app_server import AppStartError, run_app, tiny_app_env

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "testdata" / "faces"
ARTIFACTS = REPO / "tests" / "_artifacts"
CHROMIUM = "/usr/bin/chromium"
ADMIN_TOKEN = "test-admin-token-5b1f"  # the Team step's local admin: an approver of the acme guide
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@contextlib.contextmanager
def start_app(tmp_path_factory, data_dir=None, **extra_env):
    """app.py in a subprocess on a free loopback port; yields (url, data_dir, log_path, process)."""
    data_dir = data_dir or tmp_path_factory.mktemp("data")
    # The engine steps run on a tiny SDXL built from configs, small and fast enough for a CPU.
    env = tiny_app_env(data_dir, tmp_path_factory.mktemp("gradio"), tiny_sdxl_dir(tmp_path_factory),
                       HEADSHOT_ADMIN_TOKEN=ADMIN_TOKEN, HEADSHOT_ADMIN_USER="acme-brand-lead", **extra_env)
    log_path = tmp_path_factory.mktemp("log") / "app.log"
    with contextlib.ExitStack() as stack:
        try:
            url, proc = stack.enter_context(run_app(env, log_path, start_timeout_s=120, stop_timeout_s=10))
        except AppStartError as exc:
            pytest.fail(str(exc))
        yield url, data_dir, log_path, proc


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with start_app(tmp_path_factory) as (url, data_dir, _, _):
        yield url, data_dir


@pytest.fixture(scope="module")
def upload_set(tmp_path_factory) -> list[Path]:
    """Five photos of one person, a photo of two people, and a text file dressed as a JPEG."""
    d = tmp_path_factory.mktemp("upload")
    files = [FACES / f"p01_img{i}.jpg" for i in (1, 2, 4, 6, 7)] + [FACES / "couple.jpg"]
    fake = d / "notes.jpg"
    fake.write_text("this is not a photo")
    return files + [fake]


def _sessions(data_dir: Path) -> list[Path]:
    root = data_dir / "sessions"
    return [p for p in root.iterdir()] if root.exists() else []


def test_client_check_confirm_delete(server, upload_set):
    from gradio_client import Client, handle_file

    url, data_dir = server
    client = Client(url, verbose=False)
    gallery, summary, table, selection, report = client.predict(
        [handle_file(str(f)) for f in upload_set], api_name="/check_capture")
    assert len(gallery) == len(upload_set)
    captions = {Path(f).name: item["caption"] for f, item in zip(upload_set, gallery)}
    assert "Rejected" in captions["couple.jpg"] and "[multiple_faces]" in captions["couple.jpg"]
    assert "[unreadable]" in captions["notes.jpg"]
    assert "Accepted" in captions["p01_img1.jpg"]
    assert "Capture set" in summary and "too_few_photos" in summary
    rows = {row[0]: row for row in table["data"]}
    assert rows["couple.jpg"][1] == "reject"
    selected = selection["value"]
    assert selected and "couple.jpg" not in selected and "notes.jpg" not in selected
    assert Path(report).name == "capture.json"

    confirmed = client.predict(selected[:3], api_name="/confirm_selection")
    assert "3 photos confirmed" in confirmed
    (session_dir,) = _sessions(data_dir)
    assert (session_dir / "selection.json").exists()
    assert len(list((session_dir / "photos").iterdir())) == len(upload_set)

    client.predict(None, None, api_name="/delete_photos")
    assert not session_dir.exists()


def _browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is missing: .ci/run must install it")
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def test_browser_upload_shows_verdicts(server, upload_set):
    from playwright.sync_api import expect

    url, _ = server
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(url)
            page.locator("#capture-upload input[type=file]").set_input_files([str(f) for f in upload_set])
            page.locator('#capture-upload td.filename[aria-label="notes.jpg"]').wait_for(timeout=30_000)
            page.locator("#check-button").click()
            expect(page.locator("#capture-summary")).to_contain_text("Capture set", timeout=90_000)
            table = page.locator("#capture-table")
            expect(table).to_contain_text("multiple_faces")
            expect(page.locator("#capture-gallery img")).to_have_count(len(upload_set))
            cells = [c.strip() for c in table.inner_text().splitlines() if c.strip()]

            def row(name: str) -> str:  # the table renders one cell per line, row after row
                i = cells.index(name)
                return " ".join(cells[i:i + 5])

            assert "reject" in row("couple.jpg") and "multiple_faces" in row("couple.jpg")
            assert "unreadable" in row("notes.jpg")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "capture_step.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "capture_step.png").stat().st_size > 10_000


def test_browser_capture_to_iterated_row(server, tmp_path):
    """The whole engine in a real browser, on the tiny pipeline: capture, confirm, train a few steps,
    generate, pick the result and iterate one field into a labelled row."""
    from playwright.sync_api import expect

    url, _ = server
    photos = [str(FACES / f"p02_img{i}.jpg") for i in (8, 9, 47, 48)]
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(url)
            page.locator("#capture-upload input[type=file]").set_input_files(photos)
            page.locator('#capture-upload td.filename[aria-label="p02_img48.jpg"]').wait_for(timeout=30_000)
            page.locator("#check-button").click()
            expect(page.locator("#capture-summary")).to_contain_text("Capture set", timeout=90_000)
            page.locator("#confirm-button").click()
            expect(page.locator("#capture-confirmed")).to_contain_text("photos confirmed", timeout=30_000)

            page.get_by_role("tab", name="2 · Train").click()
            expect(page.locator("#base-status")).to_contain_text("local folder", timeout=30_000)
            expect(page.locator("#train-estimate")).to_contain_text("4 photos", timeout=30_000)
            page.get_by_label("Steps (blank: from set size)").fill("3")
            page.get_by_label("LoRA rank (blank: 16)").fill("4")
            page.locator("#train-button").click()
            expect(page.locator("#train-status")).to_contain_text("Training finished", timeout=180_000)

            page.get_by_role("tab", name="3 · Generate").click()
            page.get_by_text("Exactly what will be sent to the model").click()
            expect(page.locator("#prompt-preview textarea")).to_have_value(re.compile("sks person"), timeout=30_000)
            page.locator("#generate-button").click()
            first = page.locator("#generate-gallery img").first
            first.wait_for(timeout=180_000)
            first.click()

            page.get_by_role("tab", name="4 · Iterate").click()
            expect(page.locator("#selected-info")).to_contain_text("seed 42", timeout=30_000)
            page.locator("#iterate-button").click()
            expect(page.locator("#iterate-gallery img")).to_have_count(4, timeout=180_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "iterate_step.png"), full_page=True)

            # Review: every result gets a badge and a row of measured values; pick one for its previews.
            page.get_by_role("tab", name="5 · Review").click()
            page.locator("#review-button").click()
            expect(page.locator("#review-gallery img")).to_have_count(4, timeout=120_000)
            expect(page.locator("#review-table")).to_contain_text("no_face")  # random weights draw no face
            page.screenshot(path=str(ARTIFACTS / "review_step.png"), full_page=True)

            # Export every result of this session, and download the bundle as a user would.
            page.get_by_role("tab", name="6 · Export").click()
            page.locator("#export-button").click()
            zip_path = download(page, "#export-bundle a", tmp_path / "bundle.zip")
            page.screenshot(path=str(ARTIFACTS / "export_step.png"), full_page=True)
        finally:
            browser.close()
    # 4 results (1 generated + 3 in the row; the row's first image is the original) x the 2 specs
    # the linkedin preset picks for the Export step (linkedin, avatar).
    _check_bundle(zip_path, expected_files=8, specs={"linkedin", "avatar"})


def test_client_engine_steps_and_hand_written_prompt(server, tmp_path):
    """Train, generate and iterate through the API; a hand-edited prompt is sent as written and
    then cannot be iterated on a field (the fields no longer drive it)."""
    from gradio_client import Client, handle_file

    url, _ = server
    client = Client(url, verbose=False)
    photos = [FACES / f"p05_img{i}.jpg" for i in (34, 35, 36)]
    client.predict([handle_file(str(f)) for f in photos], api_name="/check_capture")
    assert "3 photos confirmed" in client.predict([f.name for f in photos], api_name="/confirm_selection")
    base = api_params(client, "/train")[0]["parameter_default"]  # the app's default: HEADSHOT_BASE_MODEL
    status, loss = client.predict(base, 2, 4, api_name="/train")
    assert "Training finished" in status and len(loss["data"]) == 2

    fields = ("light_grey_seamless", "navy_blazer_white_shirt", "soft_octabox", "approachable_smile", "head_and_shoulders")
    params = api_params(client, "/generate")
    values = {"Style preset": "linkedin", "Seed": 5, "Images": 1, "Extra prompt words (optional)": "",
              "Negative constraints (one per line; edit freely)": "no plastic skin",
              "LoRA from the Hub (blank: the one trained here)": "",
              "Prompt (edit freely: an edited prompt is sent exactly as written)": "",
              **dict(zip(("Background", "Wardrobe", "Lighting", "Expression", "Framing"), fields))}
    gallery = client.predict(*[values.get(p["label"], p.get("parameter_default")) for p in params], api_name="/generate")
    assert len(gallery) == 1 and "seed 5" in gallery[0]["caption"]
    assert gallery[0]["caption"].startswith("❌ fail · identity")  # review badge; random weights draw no face
    row = client.predict("expression", ["neutral_confident"], api_name="/iterate")
    assert [item["caption"].split(" · ")[3] for item in row] == [
        "locked: expression=approachable_smile (original)", "expression=neutral_confident"]

    values["Prompt (edit freely: an edited prompt is sent exactly as written)"] = "a photo of sks person, hand written"
    gallery = client.predict(*[values.get(p["label"], p.get("parameter_default")) for p in params], api_name="/generate")
    meta = json.loads(Image.open(gallery[0]["image"]).text["headshot-studio"])
    assert meta["spec"]["prompt"] == "a photo of sks person, hand written"
    with pytest.raises(Exception, match="written by hand"):
        client.predict("background", ["white_seamless"], api_name="/iterate")


def download(page, link_selector: str, dest: Path) -> Path:
    """Click the first download link under ``link_selector`` as a user would; save it at ``dest``."""
    link = page.locator(link_selector).first
    link.wait_for(timeout=120_000)
    with page.expect_download() as event:
        link.click()
    event.value.save_as(dest)
    return dest


def api_params(client, endpoint: str) -> list[dict]:
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"][endpoint]["parameters"]


def _check_bundle(zip_path: Path, expected_files: int, specs: set[str]) -> None:
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = set(zf.namelist())
    assert len(manifest["files"]) == expected_files
    assert names == {f["name"] for f in manifest["files"]} | {"manifest.json"}
    assert {f["spec"] for f in manifest["files"]} == specs
    assert manifest["generated"] is True and manifest["c2pa_signed"] is True


def test_client_reviews_uploaded_photos(server):
    """The Review step works on uploaded images too: the capture person passes identity, another fails."""
    from gradio_client import Client, handle_file

    url, _ = server
    client = Client(url, verbose=False)
    capture = [FACES / f"p02_img{i}.jpg" for i in (8, 9, 47, 48)]
    client.predict([handle_file(str(f)) for f in capture], api_name="/check_capture")
    client.predict([f.name for f in capture], api_name="/confirm_selection")
    uploads = [FACES / "p02_img49.jpg", FACES / "p04_img30.jpg"]
    gallery, table = client.predict("", False, False, [handle_file(str(f)) for f in uploads], api_name="/review")
    rows = {row[0]: row for row in table["data"]}
    assert rows["1-p02_img49"][2].startswith("pass") and rows["2-p04_img30"][2].startswith("fail")
    assert "identity_mismatch" in rows["2-p04_img30"][2]
    assert len(gallery) == 2 and "identity 0." in gallery[0]["caption"]
