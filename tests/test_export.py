"""Export specs, sRGB/XMP metadata and C2PA signing on a real photo (nothing mocked)."""
from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageOps

from pipeline import export as ex
from pipeline import provenance as pv

PHOTO = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "faces" / "p01_img1.jpg"
pytestmark = pytest.mark.skipif(not PHOTO.exists(), reason=f"missing test photo {PHOTO}")

PERSON = {"first": "Ada Mae", "last": "../Lovelace x"}
SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.[a-z]+$")
PNG_SPEC = ex.ExportSpec("web-png", (4, 5), ((400, 500),), format="PNG")
WEBP_SPEC = ex.ExportSpec("web-webp", (1, 1), ((300, 300),), format="WEBP", quality=85)


@pytest.fixture(autouse=True)
def _no_env_identity(monkeypatch):
    monkeypatch.delenv(pv.ENV_CERT, raising=False)
    monkeypatch.delenv(pv.ENV_KEY, raising=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def identity(data_dir):
    return pv.ensure_signing_identity(data_dir)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, identity):
    out = tmp_path_factory.mktemp("out")
    files = ex.export_image(PHOTO, list(ex.EXPORT_SPECS), out, PERSON, generated=True,
                            identity=identity, source_result="r1")
    return out, files


@pytest.fixture(scope="module")
def exported_png_webp(tmp_path_factory, identity):
    out = tmp_path_factory.mktemp("png")
    specs = {"web-png": PNG_SPEC, "web-webp": WEBP_SPEC}
    return ex.export_image(PHOTO, ["web-png", "web-webp"], out, PERSON, generated=True,
                           identity=identity, specs=specs)


def _by_spec(files):
    got = {}
    for f in files:
        got.setdefault(f.spec, []).append(f)
    return got


def _flip_image_byte(data: bytes, marker: bytes) -> bytes:
    """Flip one byte in the middle of the compressed pixel data (after ``marker``)."""
    start = data.rindex(marker) + 64
    pos = start + (len(data) - start) // 2
    while not (0x10 <= data[pos] <= 0xEF and data[pos - 1] != 0xFF):
        pos += 1
    buf = bytearray(data)
    buf[pos] ^= 0x01
    return bytes(buf)


# --------------------------------------------------------------------------- specs
def test_spec_table_is_read_only():
    assert set(ex.EXPORT_SPECS) == {"linkedin", "web-bio", "directory", "avatar", "print"}
    with pytest.raises(TypeError):
        ex.EXPORT_SPECS["x"] = ex.EXPORT_SPECS["avatar"]  # type: ignore[index]
    with pytest.raises(Exception):
        ex.EXPORT_SPECS["avatar"].quality = 10  # type: ignore[misc]
    with pytest.raises(ValueError):
        ex.ExportSpec("bad", (1, 1), ((100, 200),))
    with pytest.raises(ValueError):
        ex.get_spec("nope")
    assert ex.EXPORT_SPECS["linkedin"].circle_safe and ex.EXPORT_SPECS["linkedin"].sizes[0][0] >= 1024


def test_exact_pixel_sizes_per_spec(exported):
    _, files = exported
    with Image.open(PHOTO) as im:
        w, h = ImageOps.exif_transpose(im).size
    side = min(w, h)
    expected = {"linkedin": [(1024, 1024)], "web-bio": [(1200, 1500)],
                "directory": [(512, 512), (128, 128)], "avatar": [(256, 256)],
                "print": [(side, side)]}
    got = {k: [(f.width, f.height) for f in v] for k, v in _by_spec(files).items()}
    assert got == expected
    for f in files:
        with Image.open(f.path) as im:
            assert im.size == (f.width, f.height)
            assert im.format == "JPEG" and im.mode == "RGB"
        assert f.path.name.endswith(f"_{f.width}x{f.height}.jpg")


def test_icc_is_srgb(exported, exported_png_webp):
    _, files = exported
    for f in [*files, *exported_png_webp]:
        with Image.open(f.path) as im:
            icc = im.info.get("icc_profile")
        assert icc, f.path.name
        desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
        assert "sRGB" in desc


def test_xmp_digital_source_type_jpeg_png_webp(exported, exported_png_webp):
    _, files = exported
    for f in files:
        with Image.open(f.path) as im:
            desc = im.getxmp()["xmpmeta"]["RDF"]["Description"]
        assert desc["DigitalSourceType"] == pv.DST_TRAINED_ALGORITHMIC_MEDIA
    png = next(f for f in exported_png_webp if f.format == "PNG")
    with Image.open(png.path) as im:
        text = im.info["XML:com.adobe.xmp"]  # the iTXt chunk
        assert "Iptc4xmpExt:DigitalSourceType" in text and pv.DST_TRAINED_ALGORITHMIC_MEDIA in text
        assert im.getxmp()["xmpmeta"]["RDF"]["Description"]["DigitalSourceType"] == \
            pv.DST_TRAINED_ALGORITHMIC_MEDIA
    webp = next(f for f in exported_png_webp if f.format == "WEBP")
    with Image.open(webp.path) as im:
        assert pv.DST_TRAINED_ALGORITHMIC_MEDIA.encode() in im.info["xmp"]


# --------------------------------------------------------------------------- c2pa
def test_c2pa_trusted_with_deployment_root(exported, exported_png_webp, identity):
    _, files = exported
    for f in [*files, *exported_png_webp]:
        res = pv.verify_file(f.path, identity.root_pem)
        assert res["state"] == "Trusted" and res["trusted"] and res["valid"], (f.path.name, res)
        assert res["errors"] == []
        assert res["digital_source_type"] == pv.DST_TRAINED_ALGORITHMIC_MEDIA
        assert res["actions"][0] == "c2pa.created"
        assert res["title"] == f.path.name
    # Without the anchor the signature is intact but the signer is not trusted.
    res = pv.verify_file(files[0].path)
    assert res["has_manifest"] and not res["trusted"] and res["state"] != "Trusted"


def test_c2pa_fails_after_flipping_one_image_byte(exported, exported_png_webp, identity, tmp_path):
    _, files = exported
    jpg = next(f for f in files if f.spec == "avatar")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(_flip_image_byte(jpg.path.read_bytes(), b"\xff\xda"))
    res = pv.verify_file(bad, identity.root_pem)
    assert res["state"] == "Invalid" and not res["valid"] and not res["trusted"]
    assert any("mismatch" in (e["code"] or "") for e in res["errors"]), res["errors"]

    png = next(f for f in exported_png_webp if f.format == "PNG")
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(_flip_image_byte(png.path.read_bytes(), b"IDAT"))
    res = pv.verify_file(bad_png, identity.root_pem)
    assert not res["valid"] and not res["trusted"]


def test_unsigned_file_has_no_manifest(tmp_path):
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (32, 32), "gray").save(plain)
    res = pv.verify_file(plain)
    assert not res["has_manifest"] and not res["valid"]


def test_real_photo_marked_minor_human_edits(identity, tmp_path):
    files = ex.export_image(PHOTO, ["avatar"], tmp_path, PERSON, generated=False, identity=identity)
    (f,) = files
    res = pv.verify_file(f.path, identity.root_pem)
    assert res["trusted"] and res["digital_source_type"] == pv.DST_MINOR_HUMAN_EDITS
    assert {"c2pa.created", "c2pa.cropped", "c2pa.resized"} <= set(res["actions"])
    with Image.open(f.path) as im:
        assert im.getxmp()["xmpmeta"]["RDF"]["Description"]["DigitalSourceType"] == \
            "http://cv.iptc.org/newscodes/digitalsourcetype/minorHumanEdits"


# --------------------------------------------------------------------------- identity
def test_identity_reused_and_key_private(data_dir, identity):
    again = pv.ensure_signing_identity(data_dir)
    assert again.cert_chain_pem == identity.cert_chain_pem and again.root_pem == identity.root_pem
    key = data_dir / "c2pa" / "leaf.key"
    assert again.key_path == key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes() and b"BEGIN PRIVATE KEY" in key.read_bytes()  # PKCS#8
    assert "PRIVATE" not in repr(again) and "BEGIN" not in repr(again)
    # chain = leaf then root; the leaf is CA-issued, not self-signed
    from cryptography import x509
    leaf, root = x509.load_pem_x509_certificates(again.cert_chain_pem)
    assert leaf.issuer == root.subject and leaf.subject != leaf.issuer
    assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in \
        leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_identity_from_environment(monkeypatch, tmp_path, identity):
    org = pv.ensure_signing_identity(tmp_path / "org")  # stands in for an organisation's chain
    chain = tmp_path / "chain.pem"
    chain.write_bytes(org.cert_chain_pem)
    monkeypatch.setenv(pv.ENV_CERT, str(chain))
    monkeypatch.setenv(pv.ENV_KEY, str(org.key_path))
    env_id = pv.ensure_signing_identity(tmp_path / "unused")
    assert env_id.source == "environment" and env_id.root_pem == org.root_pem
    assert not (tmp_path / "unused" / "c2pa").exists()
    (f,) = ex.export_image(PHOTO, ["avatar"], tmp_path / "o", PERSON, identity=env_id)
    assert pv.verify_file(f.path, org.root_pem)["trusted"]
    assert not pv.verify_file(f.path, identity.root_pem)["trusted"]  # another deployment's root
    monkeypatch.delenv(pv.ENV_KEY)
    with pytest.raises(ValueError):
        pv.ensure_signing_identity(tmp_path / "unused")


# --------------------------------------------------------------------------- names + geometry
def test_names_are_safe(exported):
    out, files = exported
    for f in files:
        assert SAFE.match(f.path.name), f.path.name
        assert f.path.parent == out.resolve()
        assert ".." not in f.path.name and " " not in f.path.name
    assert files[0].path.name == "Lovelace-x_Ada-Mae_linkedin_1024x1024.jpg"
    assert sorted(p.name for p in out.iterdir()) == sorted(f.path.name for f in files)  # no temp
    name = ex.render_name("{last}/{first}_{spec}.{ext}", person={"first": "..", "last": "a/../b"},
                          spec="../x", w=1, h=1, ext="jpg")
    assert SAFE.match(name) and "/" not in name
    with pytest.raises(ValueError):
        ex.render_name("{secret}.{ext}", person=PERSON, spec="a", w=1, h=1, ext="jpg")


def test_crop_box_geometry():
    l, t, r, b = ex.crop_rect(1000, 1600, (4, 5), (400, 300, 600, 500), margin=0.1)
    assert abs((r - l) / (b - t) - 0.8) < 1e-6
    assert l <= 380 and t <= 280 and r >= 620 and b >= 520
    # a box near the edge is shifted inside and a huge box shrunk to fit
    for box in [(0, 0, 50, 50), (900, 1500, 1000, 1600), (-100, -100, 2000, 2000)]:
        l, t, r, b = ex.crop_rect(1000, 1600, (1, 1), box)
        assert 0 <= l and 0 <= t and r <= 1000 + 1e-6 and b <= 1600 + 1e-6
        assert abs((r - l) - (b - t)) < 1e-6
    assert ex.crop_rect(1000, 1600, (1, 1)) == (0.0, 300.0, 1000.0, 1300.0)


def test_crop_box_export(identity, tmp_path):
    with Image.open(PHOTO) as im:
        w, h = ImageOps.exif_transpose(im).size
    box = (w * 0.3, h * 0.2, w * 0.7, h * 0.6)
    files = ex.export_image(PHOTO, ["web-bio", "print"], tmp_path, PERSON, identity=identity,
                            crop_box=box)
    sizes = {f.spec: (f.width, f.height) for f in files}
    assert sizes["web-bio"] == (1200, 1500)
    pw, ph = sizes["print"]
    assert pw == ph and pw < min(w, h)  # the crop around the box, at its native size


# --------------------------------------------------------------------------- bundle
def test_bundle_manifest_matches_zip(identity, tmp_path):
    zip_path = ex.export_bundle({"result-7": PHOTO}, ["directory", "avatar"], tmp_path / "bundle",
                                PERSON, generated=True, identity=identity)
    assert zip_path.suffix == ".zip" and zip_path.parent == (tmp_path / "bundle").resolve()
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        listed = [f["name"] for f in manifest["files"]]
        assert sorted(names) == sorted(listed + ["manifest.json"])
        assert len(names) == len(set(names)) == 4
        for entry in manifest["files"]:
            data = zf.read(entry["name"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            assert len(data) == entry["bytes"]
            assert entry["source_result"] == "result-7"
            with Image.open(io.BytesIO(data)) as im:
                assert im.size == (entry["width"], entry["height"])
            member = tmp_path / entry["name"]
            member.write_bytes(data)
            assert pv.verify_file(member, identity.root_pem)["trusted"]  # signed bytes survive
    assert {(f["spec"], f["width"]) for f in manifest["files"]} == \
        {("directory", 512), ("directory", 128), ("avatar", 256)}
    assert manifest["generated"] is True
    assert manifest["digital_source_type"] == pv.DST_TRAINED_ALGORITHMIC_MEDIA


def test_bundle_several_results_distinct_names(identity, tmp_path):
    zip_path = ex.export_bundle([PHOTO, PHOTO], ["avatar"], tmp_path, {"first": "A", "last": "B"},
                                identity=identity, zip_name="../evil name.zip")
    assert zip_path.parent == tmp_path.resolve() and SAFE.match(zip_path.name)
    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    names = [f["name"] for f in manifest["files"]]
    assert len(names) == 2 and len(set(names)) == 2


# --------------------------------------------------------------------------- overrides
def test_specs_are_declared_as_data():
    data = __import__("yaml").safe_load(ex.SPECS_FILE.read_text())
    assert set(data) == set(ex.EXPORT_SPECS)
    assert ex.EXPORT_SPECS["web-bio"].sizes == tuple(tuple(s) for s in data["web-bio"]["sizes"])


@pytest.mark.parametrize("overrides, error", [
    ({"linkedin": {"sizes": [[1200, 1000]]}}, "does not match aspect"),
    ({"linkedin": {"aspect": [4, 5]}}, "cannot override"),
    ({"nope": {"quality": 90}}, "unknown export spec"),
    ({"avatar": {"format": "GIF"}}, "format must be one of"),
])
def test_bad_overrides_are_refused(overrides, error):
    with pytest.raises(ValueError, match=error):
        ex.resolve_specs(overrides)


def test_preset_overrides_reach_the_files(identity, tmp_path):
    """A preset's export_overrides change the delivered files; the shared table is untouched."""
    from pipeline.presets import get_preset

    corporate = get_preset("corporate")
    assert corporate.export_specs == ("web-bio", "linkedin", "directory")
    specs = ex.resolve_specs({"web-bio": {"quality": 95}, "avatar": {"sizes": [[320, 320]], "format": "PNG"}})
    assert corporate.resolved_export_specs()["web-bio"].quality == 95 == specs["web-bio"].quality
    assert ex.EXPORT_SPECS["web-bio"].quality == 90
    zip_path = ex.export_bundle({"r1": PHOTO}, ["avatar"], tmp_path, PERSON, identity=identity, specs=specs)
    with zipfile.ZipFile(zip_path) as zf:
        (entry,) = json.loads(zf.read("manifest.json"))["files"]
        with Image.open(io.BytesIO(zf.read(entry["name"]))) as im:
            assert (im.format, im.size) == ("PNG", (320, 320))


def test_preset_and_style_guide_validate_export_specs():
    from pipeline.presets import PresetError, parse_style_guide

    text = (Path(__file__).resolve().parents[1] / "presets" / "styleguides" / "acme.yaml").read_text()
    guide = parse_style_guide(text.replace("export_specs: [web-bio, linkedin, directory]",
                                           "export_specs: [web-bio]\n  export_overrides: {web-bio: {sizes: [[800, 1000]]}}"))
    assert guide.output.resolved_specs()["web-bio"].sizes == ((800, 1000),)
    with pytest.raises(PresetError, match="unknown export spec"):
        parse_style_guide(text.replace("export_specs: [web-bio, linkedin, directory]", "export_specs: [poster]"))
    with pytest.raises(PresetError, match="does not match aspect"):
        parse_style_guide(text.replace("export_specs: [web-bio, linkedin, directory]",
                                       "export_specs: [web-bio]\n  export_overrides: {web-bio: {sizes: [[800, 800]]}}"))


def test_edited_real_photo_on_new_background_is_composite(identity, tmp_path):
    (f,) = ex.export_image(PHOTO, ["avatar"], tmp_path, PERSON, generated=False, identity=identity,
                           digital_source_type=pv.DST_COMPOSITE_SYNTHETIC)
    assert pv.verify_file(f.path, identity.root_pem)["digital_source_type"] == pv.DST_COMPOSITE_SYNTHETIC
    with Image.open(f.path) as im:
        desc = im.getxmp()["xmpmeta"]["RDF"]["Description"]
        assert desc["DigitalSourceType"].endswith("/compositeSynthetic")
        assert "background" in desc["description"]["Alt"]["li"]["text"]


def test_bundle_names_by_person_for_a_team_library(identity, tmp_path):
    people = {"m1": {"first": "Ada", "last": "Lovelace"}, "m2": {"first": "Alan", "last": "Turing"}}
    zip_path = ex.export_bundle({"m1": PHOTO, "m2": PHOTO}, ["avatar"], tmp_path, identity=identity,
                                people=people, generated=False, zip_name="team")
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(f["name"] for f in json.loads(zf.read("manifest.json"))["files"])
    assert names == ["Lovelace_Ada_avatar_256x256.jpg", "Turing_Alan_avatar_256x256.jpg"]
