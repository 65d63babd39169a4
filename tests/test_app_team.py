"""The Team step in the app: access control and consent through the API, and a 5-member batch in
a real browser from upload to the approved, signed library zip."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.test_app import (  # noqa: F401  (server: the module-scoped app fixture)
    ADMIN_TOKEN, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, FACES, _browser, download, server,
)

TEAM = {"leo_marsh.jpg": "p05_img36.jpg", "jeff_barton.jpg": "p06_img20.jpg", "ana_tran.jpg": "p02_img48.jpg",
        "matt_dale.jpg": "p04_img29.jpg", "angela_voss.jpg": "p01_img1.jpg"}


@pytest.fixture(scope="module")
def team_photos(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("team")
    for name, src in TEAM.items():
        shutil.copy(FACES / src, d / name)
    return sorted(d.iterdir())


def test_team_admin_actions_need_an_approver_and_consent_needs_the_member(server, team_photos):  # noqa: F811
    from gradio_client import Client, handle_file

    url, data_dir = server
    client = Client(url, verbose=False)
    upload = [handle_file(str(team_photos[0]))]
    with pytest.raises(Exception, match="sign-in"):
        client.predict("clinic", upload, None, "", api_name="/team_enrol")
    with pytest.raises(Exception, match="sign-in"):
        client.predict("clinic", upload, None, "wrong-token", api_name="/team_enrol")
    # The local admin acts as acme-brand-lead, who is not an approver of the clinic guide.
    with pytest.raises(Exception, match="not an approver"):
        client.predict("clinic", upload, None, ADMIN_TOKEN, api_name="/team_enrol")
    status, members, _, _, _ = client.predict("acme", upload, None, ADMIN_TOKEN, api_name="/team_enrol")
    assert "have not consented yet" in status
    member_id = members["data"][0][0]
    assert not list((Path(data_dir) / "team" / "members").glob(f"{member_id}/inputs/*"))  # photo not kept
    code = members["data"][0][-1]
    with pytest.raises(Exception, match="does not match"):
        client.predict("acme", member_id, "AAAAA-BBBBB", ["team_page"], api_name="/team_consent")
    with pytest.raises(Exception, match="at least one use"):
        client.predict("acme", member_id, code, [], api_name="/team_consent")
    assert "consent recorded" in client.predict("acme", member_id, code, ["team_page"], api_name="/team_consent")
    # Without the admin token, the member table hides everyone's consent codes.
    rows, _ = client.predict("acme", "", api_name="/members_table")
    assert rows["data"] and {r[-1] for r in rows["data"]} == {"(admins only)"}
    deleted = client.predict("acme", member_id, code, api_name="/team_delete_member")
    assert "Deleted" in deleted and not (Path(data_dir) / "team" / "members" / str(member_id)).exists()


def test_browser_team_batch_from_upload_to_approved_zip(server, team_photos, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    url, _ = server
    with _browser() as pw:  # skips without Debian chromium, fails under CI
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="7 · Team").click()
            expect(page.locator("#team-guide-info")).to_contain_text("Acme Corp team page", timeout=30_000)
            page.locator("#team-token input, #team-token textarea").first.fill(ADMIN_TOKEN)
            page.locator("#team-photos input[type=file]").set_input_files([str(p) for p in team_photos])
            page.locator("#team-enrol").click()
            expect(page.locator("#team-enrol-status")).to_contain_text("have not consented yet", timeout=60_000)
            table = page.locator("#team-members")
            expect(table).to_contain_text("Marsh", timeout=30_000)

            # Each member consents with their own code (read from the admin's table), ticking a use.
            rows = _table_rows(page)
            assert len(rows) == 5 and all(r[3] == "none" for r in rows)
            page.get_by_text("For team members: give or withdraw consent").click()
            for row in rows:
                page.locator("#consent-member input").fill(str(row[0]))
                page.locator("#consent-code input, #consent-code textarea").first.fill(row[-1])
                page.locator("#consent-uses").get_by_label("team_page").check()
                page.locator("#consent-button").click()
                expect(page.locator("#consent-status")).to_contain_text("consent recorded", timeout=30_000)
                page.locator("#consent-uses").get_by_label("team_page").uncheck()

            # Upload the same photos again (the first upload was not kept), now that everyone consented.
            page.locator("#team-photos input[type=file]").set_input_files([str(p) for p in team_photos])
            page.locator("#team-enrol").click()
            expect(page.locator("#team-enrol-status")).to_contain_text("5 photo(s) queued", timeout=60_000)
            page.locator("#team-standardise").click()
            expect(page.locator("#team-gallery img")).to_have_count(5, timeout=180_000)
            expect(page.locator("#team-report")).to_contain_text("portrait(s) made with acme@1")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "team_step.png"), full_page=True)

            for _ in range(5):  # approve the queue, one portrait at a time
                page.locator("#team-approve").click()
                expect(page.locator("#team-decision")).to_contain_text("approved by acme-brand-lead", timeout=30_000)
                page.wait_for_timeout(300)
            page.locator("#team-export").click()
            zip_path = download(page, "#team-library a", tmp_path / "library.zip")
        finally:
            browser.close()
    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    people = {f["name"].split("_")[0] for f in manifest["files"]}
    assert people == {"Marsh", "Barton", "Tran", "Dale", "Voss"}
    assert manifest["digital_source_type"].endswith("compositeSynthetic") and manifest["c2pa_signed"]


def _table_rows(page) -> list[list[str]]:
    return page.locator("#team-members [role=row][data-index]").evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('[role=gridcell]')).map(c => c.innerText.trim()))")
