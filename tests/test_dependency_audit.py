"""Dependency pins: above the known advisories, and audited against the package index's
vulnerability data when the index is reachable (tools/audit_deps.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import audit_deps  # noqa: E402

# Floors: the first releases after the advisories we know of (gradio file-access and SSRF fixes
# through 6.16; Pillow's 2023-2025 decoder CVEs).
FLOORS = {"gradio": (6, 16), "pillow": (12, 0)}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2])


def test_pins_parse_and_clear_the_floors():
    pins = dict(audit_deps.pins(ROOT / "requirements.txt"))
    assert pins["gradio"] and pins["pillow"] and pins["torch"]  # extras stripped: gradio[oauth]==...
    for name, floor in FLOORS.items():
        assert _version(pins[name]) >= floor, f"{name} {pins[name]} is below {floor}"


@pytest.mark.parametrize("line, pin", [
    ("gradio[oauth]==6.31.0", ("gradio", "6.31.0")),
    ("psycopg[binary]==3.3.9  # comment", ("psycopg", "3.3.9")),
    ("pydantic>=2.7,<3", None), ("# torch==1.0", None), ("", None),
])
def test_pin_parser(tmp_path, line, pin):
    (tmp_path / "r.txt").write_text(line + "\n")
    assert audit_deps.pins(tmp_path / "r.txt") == ([pin] if pin else [])


def test_no_known_advisory_affects_an_audited_pin():
    report = audit_deps.audit(ROOT / "requirements.txt")
    if not report["audited"]:
        pytest.skip("the package index is not reachable from here: nothing could be audited")
    assert report["vulnerable"] == [], report["vulnerable"]
    audited = {r["name"] for r in report["results"] if r["source"]}
    assert "gradio" in audited  # the web-facing dependency must be among the audited ones
