"""The team workflow: the store, standardisation and export together (what the Team step and the
CLI run). No Gradio here.

1. :func:`add_people` / :func:`enrol_photos`: members from a CSV or from photo file names. A photo
   is kept only for a member with current consent; the others are listed as waiting, and their
   photos are not stored (nothing about a member is processed without consent).
2. :func:`standardize_queue`: every pending submission without a portrait is standardised; the
   master goes to the member's folder and is recorded as the submission's output.
3. The approvers decide in the store's approval queue.
4. :func:`export_library`: the newest approved portrait of every member who still consents, in the
   guide's file specs and naming, signed, as one zip.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from PIL import Image

from ..durable import write_atomic
from ..intake import IntakeLimits
from .errors import TeamError
from .paths import resolve_stored
from .records import Member, Submission

log = logging.getLogger(__name__)

MAX_CSV_ROWS = 1000
CSV_COLUMNS = ("first", "last", "email", "username", "file")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


@dataclass
class EnrolOutcome:
    created: list[int] = field(default_factory=list)  # new member ids
    submitted: dict[int, int] = field(default_factory=dict)  # member id -> new submission id
    waiting_consent: list[int] = field(default_factory=list)  # member ids whose photos were not kept
    problems: list[str] = field(default_factory=list)  # plain words for the admin (their own file names)


def save_guide_as(store, text: str | bytes, actor: str):
    """Save a guide edit with the owner rule: only an approver of the stored guide may change it,
    and whoever creates a guide must be among its own approvers (so nobody locks themself out)."""
    from ..presets import parse_style_guide
    from .errors import NotApprover, NotFound

    guide = parse_style_guide(text)
    try:
        current = store.current_guide(guide.name).guide
    except NotFound:
        current = guide
    approvers = {a.lower() for a in current.governance.approvers}
    if actor.lower() not in approvers:
        raise NotApprover(f"{actor!r} is not an approver of {current.key}; only its approvers may change it")
    return store.save_guide(text, actor)


def read_people_csv(text: str) -> list[dict[str, str]]:
    """Rows of ``first,last[,email][,username][,file]`` (header required; any column order)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not {"first", "last"} <= set(header):
        raise ValueError("the CSV needs a header row with at least the columns first and last")
    rows = []
    for n, row in enumerate(reader, start=2):
        if n - 1 > MAX_CSV_ROWS:
            raise ValueError(f"the CSV has more than {MAX_CSV_ROWS} rows")
        clean = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if not any(clean.values()):
            continue
        if not clean.get("first") or not clean.get("last"):
            raise ValueError(f"CSV line {n}: first and last are required")
        rows.append({k: clean.get(k, "") for k in CSV_COLUMNS})
    return rows


def find_member(store, guide_name: str, person: dict[str, str]) -> Member | None:
    """An active member of the team matching the username, else the email, else first + last."""
    people = store.members(guide_name)
    for key, attr in (("username", "external_username"), ("email", "email")):
        if value := (person.get(key) or "").strip().lower():
            for m in people:
                if (getattr(m, attr) or "").lower() == value:
                    return m
    first, last = (person.get("first") or "").strip().casefold(), (person.get("last") or "").strip().casefold()
    return next((m for m in people if m.first.casefold() == first and m.last.casefold() == last), None)


def add_people(store, guide_name: str, people: Iterable[dict[str, str]], actor: str) -> tuple[list[Member], list[int]]:
    """Find or create each person; returns (members in order, ids of the newly created)."""
    members, created = [], []
    for person in people:
        member = find_member(store, guide_name, person)
        if member is None:
            member = store.add_member(guide_name, person.get("first", ""), person.get("last", ""), actor,
                                      email=person.get("email") or None,
                                      external_username=person.get("username") or None)
            created.append(member.id)
        members.append(member)
    return members, created


def enrol_photos(store, guide_name: str, files: Sequence[tuple[str, str | Path]], actor: str,
                 people_by_file: dict[str, dict[str, str]] | None = None,
                 limits: IntakeLimits = IntakeLimits()) -> EnrolOutcome:
    """Make each photo a pending submission of its member (named by the CSV row for that file,
    else by the file name). Photos of members without consent are not kept."""
    from ..standardize import member_name

    out = EnrolOutcome()
    for name, path in files:
        path = Path(path)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            out.problems.append(f"{name}: not a photo (JPEG, PNG, WebP or HEIC)")
            continue
        try:
            size = path.stat().st_size
        except OSError:
            out.problems.append(f"{name}: could not be read")
            continue
        if not 0 < size <= limits.max_bytes:
            out.problems.append(f"{name}: empty or larger than {limits.max_bytes // 2**20} MB")
            continue
        person = (people_by_file or {}).get(name) or member_name(name)
        if not person.get("first") or not person.get("last"):
            out.problems.append(f"{name}: no first and last name in the file name (use first_last.jpg or a CSV)")
            continue
        (member,), created = add_people(store, guide_name, [person], actor)
        out.created += created
        if not store.has_consent(member.id):
            if member.id not in out.waiting_consent:
                out.waiting_consent.append(member.id)
            continue
        data = path.read_bytes()
        dest_dir = store.member_dir(member.id, create=True) / "inputs"
        dest_dir.mkdir(exist_ok=True)
        # Stored under a content hash, not the uploaded name (names are personal and unsafe).
        dest = dest_dir / f"{hashlib.sha256(data).hexdigest()[:20]}{path.suffix.lower()}"
        write_atomic(dest, data)
        out.submitted[member.id] = store.submit(member.id, [dest], actor).id
    return out


def _sources(store, items: list[Submission], names: dict[int, str]):
    """(name, bytes) per submission, read one at a time so a batch stays in bounded memory."""
    for sub in items:
        path = resolve_stored(sub.inputs[-1], store.root)
        yield names[sub.id], path.read_bytes()


def standardize_queue(store, guide_name: str, actor: str, out_dir: str | Path, *, background: str | None = None,
                      analyzer=None, workers: int = 2, submission_ids: Iterable[int] | None = None,
                      size: tuple[int, int] | None = None) -> list:
    """Standardise every pending submission of the team that has no portrait yet; returns one
    :class:`~pipeline.standardize.TeamReport` per guide version involved (normally one)."""
    from ..standardize import standardize_batch

    wanted = set(submission_ids) if submission_ids is not None else None
    todo = [s for s in store.queue(guide_name) if not s.outputs and s.inputs
            and (wanted is None or s.id in wanted) and store.has_consent(s.member_id)]
    reports = []
    for version in sorted({s.guide_version for s in todo}):
        group = [s for s in todo if s.guide_version == version]
        guide = store.guide_version(guide_name, version).guide
        names = {s.id: f"m{s.member_id}-s{s.id}{Path(s.inputs[-1]).suffix}" for s in group}
        people = {}
        for s in group:
            m = store.member(s.member_id)
            people[names[s.id]] = {"first": m.first, "last": m.last}
        report = standardize_batch(_sources(store, group, names), guide, Path(out_dir) / f"v{version}",
                                   background=background, analyzer=analyzer, workers=workers, people=people,
                                   size=size)
        by_name = {p.file: p for p in report.photos}
        failed = []
        for s in group:
            p = by_name[names[s.id]]
            if not p.output:
                failed.append(s.id)
                continue
            dest_dir = store.member_dir(s.member_id, create=True) / "outputs"
            dest_dir.mkdir(exist_ok=True)
            dest = dest_dir / f"s{s.id}{Path(p.output).suffix}"
            shutil.move(p.output, dest)
            store.add_outputs(s.id, [dest], actor)
            p.output = str(dest)
        store.audit(actor, "team.standardize", f"guide:{guide.key}", submissions=[s.id for s in group],
                    failed=failed, background=report.background)
        reports.append(report)
    return reports


def outdated_members(store, guide_name: str) -> list[int]:
    """Members whose newest approved portrait was made with an older version of the guide."""
    current = store.current_guide(guide_name).version
    return [s.member_id for s in approved_library(store, guide_name) if s.guide_version < current]


def restandardize_outdated(store, guide_name: str, actor: str, member_ids: Iterable[int] | None = None):
    """The explicit step after a guide edit: new pending submissions, from the kept inputs, for
    members on an older version (their approved portraits stay as they are until a new one is
    approved). Run :func:`standardize_queue` next."""
    ids = list(member_ids) if member_ids is not None else outdated_members(store, guide_name)
    return store.restandardize(guide_name, ids, actor)


def approved_library(store, guide_name: str) -> list[Submission]:
    """The newest approved submission of every active member who still consents."""
    newest: dict[int, Submission] = {}
    for sub in store.submissions(guide_name=guide_name, status="approved"):
        if sub.outputs and store.has_consent(sub.member_id):
            newest[sub.member_id] = sub  # ids ascend: the last one wins
    return list(newest.values())


def export_library(store, guide_name: str, actor: str, out_dir: str | Path, data_dir=None) -> Path:
    """The approved library as one signed zip, in the current guide's file specs and names."""
    from .. import provenance
    from ..export import export_bundle

    library = approved_library(store, guide_name)
    if not library:
        raise TeamError("no approved portraits to export yet")
    guide = store.current_guide(guide_name).guide
    images, people, boxes = {}, {}, {}
    for sub in library:
        store.require_consent(sub.member_id)
        member = store.member(sub.member_id)
        path = resolve_stored(sub.outputs[-1], store.root)
        key = f"s{sub.id}"
        images[key], people[key] = path, {"first": member.first, "last": member.last}
        with Image.open(path) as im:
            boxes[key] = (0, 0, *im.size)  # the master is already framed: crop only to each aspect
    zip_path = export_bundle(images, list(guide.output.export_specs), out_dir, generated=False,
                             digital_source_type=provenance.DST_COMPOSITE_SYNTHETIC, people=people,
                             name_template=guide.output.name_template, crop_boxes=boxes, crop_margin=0,
                             specs=guide.output.resolved_specs(), zip_name=f"{guide.name}_library",
                             data_dir=data_dir or store.root)
    store.audit(actor, "library.export", f"guide:{guide.key}", submissions=[s.id for s in library])
    return zip_path


MAX_ARCHIVE_FILES = 500
MAX_ARCHIVE_BYTES = 2 * 1024**3


def unpack_uploads(paths: Iterable[str | Path], dest: str | Path,
                   limits: IntakeLimits = IntakeLimits()) -> tuple[list[tuple[str, Path]], list[str]]:
    """Uploaded photos and zips of photos as ``(file name, path)``; zip members are extracted by
    base name only (no folders, so nothing can land outside ``dest``), within count and size caps.
    Returns the photos and plain-words problems."""
    import zipfile

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    photos: list[tuple[str, Path]] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.suffix.lower() != ".zip":
            photos.append((path.name, path))
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                entries = [i for i in zf.infolist() if not i.is_dir()]
                total = sum(i.file_size for i in entries)
                if len(entries) > MAX_ARCHIVE_FILES or total > MAX_ARCHIVE_BYTES:
                    problems.append(f"{path.name}: more than {MAX_ARCHIVE_FILES} files or 2 GB unpacked")
                    continue
                for info in entries:
                    name = Path(info.filename.replace("\\", "/")).name
                    if not name or name.startswith(".") or "__MACOSX" in info.filename:
                        continue
                    if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                        problems.append(f"{name}: not a photo (JPEG, PNG, WebP or HEIC)")
                        continue
                    if info.file_size > limits.max_bytes:
                        problems.append(f"{name}: larger than {limits.max_bytes // 2**20} MB")
                        continue
                    target = dest / f"{len(photos):04d}{Path(name).suffix.lower()}"
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    photos.append((name, target))
        except (zipfile.BadZipFile, OSError, RuntimeError):  # RuntimeError: encrypted members
            problems.append(f"{path.name}: not a readable zip")
    return photos, problems


USE_LABELS = {"team_page": "the team page of the website", "directory": "the staff directory",
              "internal_chat": "internal chat and email avatars", "booking_site": "the booking site"}


def notice_text(guide) -> str:
    """The consent notice a member reads, generated from the guide so it always says what is true."""
    g = guide.governance
    uses = "\n".join(f"- {USE_LABELS.get(u, u.replace('_', ' '))}" for u in g.uses)
    return (f"**{guide.title}: portrait consent (notice {g.notice_version})**\n\n"
            f"Your uploaded photo is cropped, colour-matched and placed on an approved background "
            f"(no new face is generated). Approvers ({', '.join(g.approvers)}) review the result before use.\n\n"
            f"Tick each use you agree to; nothing is ticked for you:\n{uses}\n\n"
            f"Your input photos are deleted after {g.retention_days} days. You can withdraw consent "
            f"and delete everything about you (photos, portraits) at any time.")
