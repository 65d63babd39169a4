"""``python -m pipeline team ...``: the governed workflow by command line, five phone photos to an
approved, named, signed library (in-process calls of the CLI's main, real models and SQLite)."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from pipeline.__main__ import main
from pipeline.presets import STYLEGUIDES_DIR

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"
PHOTOS = {"leo_marsh.jpg": "p05_img36.jpg", "jeff_barton.jpg": "p06_img20.jpg", "ana_tran.jpg": "p02_img48.jpg",
          "matt_dale.jpg": "p04_img29.jpg", "angela_voss.jpg": "p01_img1.jpg"}
pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason="shared/testdata/faces is missing")


def run(capsys, *argv: str) -> tuple[int, object]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else None)


def test_team_cli_from_photos_to_approved_library(tmp_path, capsys):
    data = ["--data-dir", str(tmp_path / "data")]
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, src in PHOTOS.items():
        shutil.copy(FACES / src, photos / name)

    code, saved = run(capsys, "team", "guide", str(STYLEGUIDES_DIR / "acme.yaml"), "--actor", "it-admin", *data)
    assert code == 0 and saved["guide"] == "acme@1"

    # Enrolling before anyone consented keeps nothing and says who is waiting.
    code, first = run(capsys, "team", "enrol", str(photos), "--guide", "acme", "--actor", "it-admin", *data)
    assert code == 1 and len(first["waiting_consent"]) == 5 and first["submitted"] == {}

    code, members = run(capsys, "team", "members", "--guide", "acme", "--codes", *data)
    assert code == 0 and {m["consent"] for m in members} == {"none"}
    leo = next(m for m in members if m["last"] == "Marsh")
    assert run(capsys, "team", "consent", str(leo["id"]), "--code", "WRONG-CODE1", "--use", "team_page", *data)[0] == 2
    for m in members:
        code, record = run(capsys, "team", "consent", str(m["id"]), "--code", m["code"], "--use", "team_page",
                           "--use", "directory", *data)
        assert code == 0 and record["action"] == "given"

    code, second = run(capsys, "team", "enrol", str(photos), "--guide", "acme", "--actor", "it-admin", *data)
    assert code == 0 and len(second["submitted"]) == 5
    code, reports = run(capsys, "team", "standardize", "--guide", "acme", "--out", str(tmp_path / "work"),
                        "--actor", "it-admin", *data)
    assert code in (0, 1) and len(reports[0]["photos"]) == 5
    assert (tmp_path / "work" / "v1" / "contact_sheet.jpg").is_file()

    sids = sorted(second["submitted"].values())
    assert run(capsys, "team", "approve", str(sids[0]), "--actor", "it-admin", *data)[0] == 2  # not an approver
    for sid in sids:
        code, sub = run(capsys, "team", "approve", str(sid), "--actor", "acme-brand-lead", *data)
        assert code == 0 and sub["status"] == "approved"

    code, exported = run(capsys, "team", "export", "--guide", "acme", "--out", str(tmp_path / "lib"),
                         "--actor", "acme-brand-lead", *data)
    assert code == 0
    with zipfile.ZipFile(exported["zip"]) as zf:
        names = [n for n in zf.namelist() if n != "manifest.json"]
    assert {n.split("_")[0] for n in names} == {"Marsh", "Barton", "Tran", "Dale", "Voss"}
    assert any(n.startswith("Marsh_Leo_web-bio_1200x1500") for n in names)

    code, audit = run(capsys, "team", "audit", "--json", *data)
    actions = {e["action"] for e in audit}
    assert {"consent.given", "submission.create", "library.export"} <= actions
    assert "leo" not in json.dumps(audit).lower()  # ids only: no names or file names in the log

    # A guide edit changes nothing approved; re-standardising is an explicit command.
    v2 = tmp_path / "acme.yaml"
    v2.write_text((STYLEGUIDES_DIR / "acme.yaml").read_text().replace("version: 1\n", "version: 2\n", 1))
    assert run(capsys, "team", "guide", str(v2), "--actor", "acme-brand-lead", *data)[1]["guide"] == "acme@2"
    code, plan = run(capsys, "team", "restandardize", "--guide", "acme", "--actor", "acme-brand-lead", *data)
    assert code == 0 and plan["guide_key"] == "acme@2" and len(plan["items"]) == 5
