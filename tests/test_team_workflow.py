"""The team workflow end to end on real photos: members, consent codes, enrolment, standardisation,
approval and the signed library export (SQLite; the store's own tests cover PostgreSQL)."""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from pipeline import provenance
from pipeline.presets import STYLEGUIDES_DIR
from pipeline.team import ConsentError, NotApprover, TeamError, TeamStore
from pipeline.team.codes import check_code, consent_code
from pipeline.team.workflow import (
    approved_library, enrol_photos, export_library, read_people_csv, standardize_queue,
)

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"
ACME = (STYLEGUIDES_DIR / "acme.yaml").read_text()
APPROVER, ADMIN = "acme-brand-lead", "it-admin"
TEAM = {  # uploaded file name -> source photo (one per person)
    "ada_lovelace.jpg": "p05_img36.jpg", "alan_turing.jpg": "p06_img20.jpg", "grace_hopper.jpg": "p02_img48.jpg",
    "katherine_johnson.jpg": "p04_img29.jpg", "edsger_dijkstra.jpg": "p01_img1.jpg",
}
pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason="shared/testdata/faces is missing")


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> list[tuple[str, Path]]:
    d = tmp_path_factory.mktemp("uploads")
    out = []
    for name, src in TEAM.items():
        shutil.copy(FACES / src, d / name)
        out.append((name, d / name))
    return out


@pytest.fixture(scope="module")
def team(tmp_path_factory, uploads):
    """A store with the acme guide, five members enrolled before and after consenting, and their
    photos standardised; shared by the tests below (each test only reads or adds)."""
    root = tmp_path_factory.mktemp("data")
    store = TeamStore(root=root)
    store.save_guide(ACME, ADMIN)
    before = enrol_photos(store, "acme", uploads, ADMIN)
    guide = store.current_guide("acme").guide
    for member_id in before.waiting_consent[:4]:  # the fifth member never consents
        assert check_code(member_id, consent_code(member_id, root).lower(), root)
        store.record_consent(member_id, guide.governance.notice_version, ["team_page"], given_by=f"member:{member_id}")
    after = enrol_photos(store, "acme", uploads, ADMIN)
    reports = standardize_queue(store, "acme", ADMIN, root / "work")
    yield store, root, before, after, reports
    store.close()


def test_photos_of_members_without_consent_are_not_kept(team):
    store, root, before, after, _ = team
    assert len(before.created) == 5 and before.waiting_consent == before.created and not before.submitted
    assert sorted(after.submitted) == sorted(before.created[:4]) and after.waiting_consent == [before.created[4]]
    assert not after.created  # the same people are found again, not duplicated
    refused = before.created[4]
    assert not (root / "team" / "members" / str(refused)).exists()
    with pytest.raises(ConsentError):
        store.submit(refused, [root / "x.jpg"], ADMIN)


def test_consent_codes_are_personal():
    import tempfile

    root = Path(tempfile.mkdtemp())
    a, b = consent_code(1, root), consent_code(2, root)
    assert a != b and len(a) == 11 and a[5] == "-"
    assert check_code(1, a, root) and check_code(1, a.replace("-", " ").lower(), root)
    assert not check_code(2, a, root) and not check_code(1, "", root) and not check_code(1, a[:-1], root)
    assert consent_code(1, root) == a  # stable: the secret is kept
    assert (root / "team" / "consent.secret").stat().st_mode & 0o777 == 0o600
    other = Path(tempfile.mkdtemp())
    assert consent_code(1, other) != a  # another deployment, another secret


def test_standardised_portraits_land_in_member_folders(team):
    store, root, _, after, reports = team
    (report,) = reports
    assert len(report.photos) == 4 and all(p.verdict != "fail" for p in report.photos)
    for member_id, sid in after.submitted.items():
        sub = store.submission(sid)
        assert sub.status == "pending" and len(sub.outputs) == 1
        out = root / sub.outputs[0]
        assert out.is_file() and out.parent == root / "team" / "members" / str(member_id) / "outputs"
        with Image.open(out) as im:
            assert im.size == tuple(report.size)
    eyes = [p.metrics.eye_line for p in report.photos]
    assert max(eyes) - min(eyes) <= 0.01
    assert (root / "work" / "v1" / "contact_sheet.jpg").is_file()
    saved = json.loads((root / "work" / "v1" / "report.json").read_text())
    assert all("ada" not in p["file"].lower() for p in saved["photos"])  # work names carry ids only


def test_approval_and_signed_library_export(team, tmp_path):
    store, root, _, after, _ = team
    sids = list(after.submitted.values())
    with pytest.raises(NotApprover):
        store.approve(sids[0], ADMIN)
    with pytest.raises(TeamError, match="no approved"):
        export_library(store, "acme", APPROVER, tmp_path / "empty")
    for sid in sids[:3]:
        store.approve(sid, APPROVER)
    store.reject(sids[3], APPROVER, "eyes closed; please send another photo")
    zip_path = export_library(store, "acme", APPROVER, tmp_path / "lib")
    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = sorted(f["name"] for f in manifest["files"])
        first = zf.read(names[0])
    specs = store.current_guide("acme").guide.output.export_specs
    assert len(names) == 3 * sum(len(__import__("pipeline.export", fromlist=["x"]).EXPORT_SPECS[s].sizes) for s in specs)
    assert {n.split("_")[0] for n in names} == {"Lovelace", "Turing", "Hopper"}
    assert manifest["digital_source_type"] == provenance.DST_COMPOSITE_SYNTHETIC
    (tmp_path / names[0]).write_bytes(first)
    assert provenance.verify_file(tmp_path / names[0], provenance.ensure_signing_identity(root).root_pem)["trusted"]
    with Image.open(io.BytesIO(first)) as im:
        assert im.getxmp()["xmpmeta"]["RDF"]["Description"]["DigitalSourceType"].endswith("compositeSynthetic")
    assert any(e.action == "library.export" for e in store.audit_entries())


def test_new_guide_version_changes_nothing_until_restandardised(team, tmp_path):
    from pipeline.team.workflow import outdated_members, restandardize_outdated

    store, root, _, after, _ = team
    sid = sorted(after.submitted.values())[1]
    if store.submission(sid).status != "approved":
        store.approve(sid, APPROVER)
    before = {s.id: (s.guide_key, s.outputs) for s in approved_library(store, "acme")}
    store.save_guide(ACME.replace("version: 1\n", "version: 2\n", 1).replace("eye_line: 0.40", "eye_line: 0.38"),
                     APPROVER)
    assert {s.id: (s.guide_key, s.outputs) for s in approved_library(store, "acme")} == before  # untouched
    outdated = outdated_members(store, "acme")
    assert sorted(outdated) == sorted(s.member_id for s in approved_library(store, "acme"))
    plan = restandardize_outdated(store, "acme", APPROVER)
    assert {i.member_id for i in plan.items} == set(outdated) and plan.guide_key == "acme@2"
    (report,) = standardize_queue(store, "acme", APPROVER, tmp_path / "redo")
    assert report.guide == "acme@2"
    assert all(abs(p.metrics.eye_line - 0.38) < 0.005 for p in report.photos if p.output)
    for item in plan.items:
        assert store.submission(item.submission_id).outputs  # pending, with the new portrait
    assert {s.id: (s.guide_key, s.outputs) for s in approved_library(store, "acme")} == before


def test_opt_out_removes_member_from_library_and_disk(team, tmp_path):
    store, root, _, after, _ = team
    member_id, sid = next(iter(after.submitted.items()))
    if store.submission(sid).status != "approved":
        store.approve(sid, APPROVER)
    assert member_id in {s.member_id for s in approved_library(store, "acme")}
    store.opt_out(member_id, ADMIN)
    assert member_id not in {s.member_id for s in approved_library(store, "acme")}
    assert not (root / "team" / "members" / str(member_id)).exists()
    leftovers = [p for p in root.rglob("*") if p.is_file() and f"m{member_id}-" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("text, error", [
    ("first,last\nAda,Lovelace\n", None),
    ("Last,First,Email\nLovelace,Ada,ada@example.com\n\n", None),
    ("name\nAda Lovelace\n", "at least the columns first and last"),
    ("first,last\nAda,\n", "line 2"),
])
def test_people_csv(text, error):
    if error:
        with pytest.raises(ValueError, match=error):
            read_people_csv(text)
    else:
        (row,) = read_people_csv(text)
        assert (row["first"], row["last"]) == ("Ada", "Lovelace")
