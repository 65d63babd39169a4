"""Team store: consent, approvals, append-only audit, guide versions, retention and opt-out.

Every test runs on both backends: SQLite (a file in a temp data folder) and a real, throwaway
PostgreSQL server started for the session from the Debian ``postgresql`` package. Nothing is mocked;
the only stand-in is a settable clock, so retention can be tested without waiting 30 days.
"""
from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from pipeline.presets import STYLEGUIDES_DIR
from pipeline.team import (
    ConsentError, DecisionError, GuideVersionError, NotApprover, TeamStore, member_dir, sweep_at_start,
)
from pipeline.team import cli as team_cli
from pipeline.team.audit import check_details
from pipeline.team.schema import audit_log, guide_versions, schema_version

ACME = (STYLEGUIDES_DIR / "acme.yaml").read_text()
NOTICE = "2026-11"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
APPROVER, OTHER_APPROVER, ADMIN = "acme-brand-lead", "acme-people-ops", "it-admin"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def edited(text: str, version: int, **replace: str) -> str:
    """The acme guide with a new version number and some lines swapped (an admin's edit)."""
    text = text.replace("version: 1\n", f"version: {version}\n", 1)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


# --------------------------------------------------------------------------- PostgreSQL server
def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass
class PgServer:
    socket_dir: Path
    _n: Iterator[int] = itertools.count()

    def new_database(self) -> str:
        """A fresh, empty database per test: isolation without cleaning tables."""
        name = f"t{next(self._n)}"
        admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@/{db}?host={self.socket_dir}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        message = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)"
        if in_ci():
            pytest.fail(message + " - CI must test both backends")
        pytest.skip(message)
    # PostgreSQL refuses to run as root: run it as the 'postgres' system user (or nobody).
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        assert owner is not None, "no unprivileged user to run PostgreSQL as"
        as_user = ["runuser", "-u", owner.pw_name, "--"]
    # A short path in /tmp (not pytest's root-only tmp dir): the server user must reach it, and a
    # unix socket path is limited to ~100 characters.
    tmp = Path(tempfile.mkdtemp(prefix="hs-pg-", dir="/tmp"))
    if owner is not None:
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
    data, log = tmp / "data", tmp / "server.log"
    try:
        subprocess.run(as_user + [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                  "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, capture_output=True, timeout=60)
        # Unix socket only (no TCP), no fsync: a throwaway server.
        subprocess.run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
                                  "-o", f"-k {tmp} -c listen_addresses='' -F", "start"],
                       check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        detail = log.read_text() if log.exists() else getattr(e, "stderr", b"")
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"could not start a throwaway PostgreSQL: {e}\n{detail!s}")
    try:
        yield PgServer(tmp)
    finally:
        subprocess.run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- store fixtures
class Clock:
    """A settable clock (aware UTC): the store asks it for "now"."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'team' / 'team.db'}"
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url, root, clock) -> Iterator[TeamStore]:
    s = TeamStore(url=db_url, root=root, clock=clock)
    s.save_guide(ACME, ADMIN)
    yield s
    s.close()


def photo(root: Path, rel: str, content: bytes = b"\xff\xd8 not really a jpeg") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def consenting_member(store: TeamStore, first: str = "Ann", last: str = "Lee", **kw) -> int:
    m = store.add_member("acme", first, last, ADMIN, **kw)
    store.record_consent(m.id, NOTICE, ["team_page", "directory"], given_by=m.id)
    return m.id


# --------------------------------------------------------------------------- schema and connections
def test_schema_is_idempotent_and_versioned(store, db_url, root):
    again = TeamStore(url=db_url, root=root)  # second open: create_all and triggers run again, no error
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(schema_version.c.version)).scalars().all() == [1]
    again.close()


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path):
    s = TeamStore(root=tmp_path)  # the default URL: <data_root>/team/team.db
    assert (tmp_path / "team" / "team.db").is_file()
    for _ in range(2):  # every pooled connection, not only the first
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        s.engine.dispose()
    s.close()


# --------------------------------------------------------------------------- guide versions
def test_guide_versions_are_never_rewritten(store):
    v1 = store.current_guide("acme")
    assert v1.key == "acme@1" and v1.guide.governance.notice_version == NOTICE
    assert store.save_guide(ACME, ADMIN).sha256 == v1.sha256  # same text: no new version
    assert len(store.guide_history("acme")) == 1
    changed_v1 = ACME.replace("saturation: 0.95", "saturation: 0.9")
    with pytest.raises(GuideVersionError, match="version 2"):
        store.save_guide(changed_v1, ADMIN)  # same number, different text
    v2 = store.save_guide(edited(ACME, 2, **{"saturation: 0.95": "saturation: 0.9"}), ADMIN)
    assert store.current_guide("acme").key == "acme@2"
    assert store.guide_version("acme", 1).yaml == ACME  # the old version is untouched
    with pytest.raises(GuideVersionError):
        store.save_guide(edited(ACME, 2), ADMIN)  # v2 exists with other text
    assert [g.version for g in store.guide_history("acme")] == [1, 2] and v2.sha256 != v1.sha256
    with pytest.raises(DBAPIError, match="(?i)never rewritten|append-only"):  # and not behind the API's back
        with store.engine.begin() as conn:
            conn.execute(guide_versions.update().values(yaml="name: hacked"))
    assert store.guide_version("acme", 1).yaml == ACME


# --------------------------------------------------------------------------- consent
@dataclass(frozen=True)
class ConsentCase:
    label: str
    given_by: str  # "self", "self:user", "self:tag", "other", "admin"
    uses: tuple[str, ...]
    notice: str = NOTICE
    ok: bool = False


CONSENT_CASES = [
    ConsentCase("by the member (id)", "self", ("team_page",), ok=True),
    ConsentCase("by the member (Hub user)", "self:user", ("team_page", "directory"), ok=True),
    ConsentCase("by the member (member:id)", "self:tag", ("internal_chat",), ok=True),
    ConsentCase("given for them by an admin", "admin", ("team_page",)),
    ConsentCase("given for them by another member", "other", ("team_page",)),
    ConsentCase("nothing ticked (no implied consent)", "self", ()),
    ConsentCase("a use the guide does not offer", "self", ("billboard",)),
    ConsentCase("an outdated notice", "self", ("team_page",), notice="2025-01"),
]


@pytest.mark.parametrize("case", CONSENT_CASES, ids=lambda c: c.label)
def test_consent_is_explicit_and_by_the_member(store, case):
    me = store.add_member("acme", "Ann", "Lee", ADMIN, external_username="ann-lee")
    other = store.add_member("acme", "Bo", "Chen", ADMIN)
    given_by = {"self": me.id, "self:user": "ann-lee", "self:tag": f"member:{me.id}", "other": other.id,
                "admin": APPROVER}[case.given_by]
    assert not store.has_consent(me.id)
    if not case.ok:
        with pytest.raises(ConsentError):
            store.record_consent(me.id, case.notice, list(case.uses), given_by=given_by)
        with pytest.raises(ConsentError, match="not consented"):
            store.require_consent(me.id)
        return
    record = store.record_consent(me.id, case.notice, list(case.uses), given_by=given_by)
    assert record.given and record.given_by == f"member:{me.id}"
    for use in ("team_page", "directory", "internal_chat"):
        assert store.has_consent(me.id, use) == (use in case.uses)
    with pytest.raises(ConsentError, match="billboard"):
        store.require_consent(me.id, "billboard")
    assert not store.has_consent(other.id)  # one member's consent says nothing about another


def test_nothing_is_processed_without_consent(store, root):
    m = store.add_member("acme", "Ann", "Lee", ADMIN)
    selfie = photo(root, "uploads/ann_lee_selfie.jpg")
    with pytest.raises(ConsentError):
        store.submit(m.id, [selfie], ADMIN)
    with pytest.raises(ConsentError):
        store.register_file(m.id, "embedding", photo(root, "team/members/1/embedding.npy"), ADMIN)
    store.record_consent(m.id, NOTICE, ["team_page"], given_by=m.id)
    sub = store.submit(m.id, [selfie], ADMIN)
    assert sub.status == "pending" and sub.inputs == ("uploads/ann_lee_selfie.jpg",)
    withdrawn = store.withdraw_consent(m.id, f"member:{m.id}")
    assert withdrawn.action == "withdrawn"
    assert [c.action for c in store.consent_history(m.id)] == ["given", "withdrawn"]  # a new record, not an edit
    with pytest.raises(ConsentError, match="withdrawn"):
        store.require_consent(m.id)
    for attempt in (lambda: store.submit(m.id, [selfie], ADMIN),
                    lambda: store.add_outputs(sub.id, [photo(root, "out/x.jpg")], ADMIN)):
        with pytest.raises(ConsentError):
            attempt()


def test_consent_to_an_old_notice_lapses_when_the_notice_changes(store):
    m = consenting_member(store)
    store.require_consent(m, "team_page")
    store.save_guide(edited(ACME, 2, **{f'notice_version: "{NOTICE}"': 'notice_version: "2027-01"'}), ADMIN)
    with pytest.raises(ConsentError, match="2027-01"):
        store.require_consent(m, "team_page")
    with pytest.raises(ConsentError, match="not the current notice"):
        store.record_consent(m, NOTICE, ["team_page"], given_by=m)
    store.record_consent(m, "2027-01", ["team_page"], given_by=m)
    store.require_consent(m, "team_page")


# --------------------------------------------------------------------------- approvals
def submitted(store: TeamStore, root: Path, member_id: int, name: str) -> int:
    sub = store.submit(member_id, [photo(root, f"uploads/{name}.jpg")], ADMIN)
    store.add_outputs(sub.id, [photo(root, f"team/members/{member_id}/out/{name}_web.jpg")], "standardizer")
    return sub.id


@pytest.mark.parametrize("reviewer,allowed", [
    (APPROVER, True), (OTHER_APPROVER, True), ("ACME-Brand-Lead", True),  # Hub names are case-insensitive
    (ADMIN, False), ("acme-brand-lead2", False), ("", False),
])
def test_only_approvers_decide(store, root, reviewer, allowed):
    sid = submitted(store, root, consenting_member(store), "ann")
    assert store.is_approver("acme", reviewer) == allowed
    if not allowed:
        for decide in (lambda: store.approve(sid, reviewer), lambda: store.reject(sid, reviewer, "blurry")):
            with pytest.raises(NotApprover) as err:
                decide()
            assert isinstance(err.value, PermissionError)
        assert store.submission(sid).status == "pending"
        return
    assert store.approve(sid, reviewer).reviewer == reviewer


def test_decisions_are_final_until_reopened(store, root):
    sid = submitted(store, root, consenting_member(store), "ann")
    with pytest.raises(DecisionError, match="reason"):
        store.reject(sid, APPROVER, "  ")
    rejected = store.reject(sid, APPROVER, "Background is not the approved grey")
    assert (rejected.status, rejected.reason) == ("rejected", "Background is not the approved grey")
    for again in (lambda: store.approve(sid, OTHER_APPROVER), lambda: store.reject(sid, APPROVER, "again")):
        with pytest.raises(DecisionError, match="already rejected"):
            again()
    with pytest.raises(NotApprover):
        store.reopen(sid, ADMIN, "second look")
    assert store.reopen(sid, OTHER_APPROVER, "second look").status == "pending"
    assert [s.id for s in store.queue("acme")] == [sid]
    assert store.approve(sid, OTHER_APPROVER).status == "approved"
    assert store.queue("acme") == []


def test_approved_portraits_keep_their_guide_version_and_restandardize_is_explicit(store, root):
    ann, bo = consenting_member(store, "Ann", "Lee"), consenting_member(store, "Bo", "Chen")
    quiet = store.add_member("acme", "Cy", "Dunn", ADMIN).id  # never consented
    approved = [store.approve(submitted(store, root, m, f"m{m}"), APPROVER) for m in (ann, bo)]
    store.save_guide(edited(ACME, 2, **{"default_background: studio_grey": "default_background: acme_blue"}), ADMIN)
    for sub in approved:  # a new version changes nothing by itself
        now = store.submission(sub.id)
        assert (now.status, now.guide_key, now.outputs) == ("approved", "acme@1", sub.outputs)

    def redo(item):  # stands in for the pixel work (standardize.py): one output per input
        return [photo(root, f"team/members/{item.member_id}/out/v2_{i}.jpg") for i, _ in enumerate(item.inputs)]

    plan = store.restandardize("acme", [ann, quiet], APPROVER, redo=redo)
    assert plan.guide_key == "acme@2" and plan.skipped == {quiet: "no_consent"}
    [item] = plan.items
    assert item.member_id == ann and all(p.is_file() for p in item.inputs)
    new = store.submission(item.submission_id)
    assert (new.status, new.guide_key, len(new.outputs)) == ("pending", "acme@2", 1)
    assert new.inputs == store.submission(approved[0].id).inputs  # the same input photos, redone
    assert store.submission(approved[0].id).guide_key == "acme@1"


# --------------------------------------------------------------------------- audit log
def test_audit_log_is_append_only(store):
    consenting_member(store)
    before = [e.to_dict() for e in store.audit_entries()]
    assert len(before) >= 3
    attempts = [audit_log.update().values(actor="someone-else"), audit_log.delete(),
                audit_log.delete().where(audit_log.c.id == 1)]
    if store.engine.dialect.name == "postgresql":
        attempts.append(sa.text("TRUNCATE audit_log"))
    for statement in attempts:
        with pytest.raises(DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(statement)
    assert [e.to_dict() for e in store.audit_entries()] == before
    public = [n for n in dir(store) if not n.startswith("_") and "audit" in n]
    assert public == ["audit", "audit_entries"]  # append and read only: no update or delete API


def test_audit_log_holds_ids_not_names_or_photo_files(store, root):
    ann = consenting_member(store, "Annabel", "Lindqvist", email="annabel@example.com",
                            external_username="annabel-l")
    sid = submitted(store, root, ann, "annabel_lindqvist_selfie")
    store.register_file(ann, "embedding", photo(root, f"team/members/{ann}/annabel_face.npy"), "standardizer")
    store.reject(sid, APPROVER, "Annabel's collar is cut off in annabel_lindqvist_selfie.jpg")
    store.opt_out(ann, ADMIN)
    log_text = json.dumps([e.to_dict() for e in store.audit_entries()]).lower()
    for secret in ("annabel", "lindqvist", "example.com", "selfie", ".jpg", ".npy", "uploads", "collar"):
        assert secret not in log_text, secret
    actions = {e.action for e in store.audit_entries()}
    assert {"member.add", "consent.given", "submission.create", "approval.rejected", "member.opt_out",
            "consent.withdrawn"} <= actions


@pytest.mark.parametrize("details", [
    {"file": "uploads/ann.jpg"}, {"file": "ann.jpg"}, {"prompt": "a photo of sks person"},
    {"files": ["a", "b/c"]}, {"nested": {"a": 1}}, {"bad key!": 1},
])
def test_audit_details_refuse_text_paths_and_file_names(details):
    with pytest.raises(ValueError):
        check_details(details)


# --------------------------------------------------------------------------- retention and opt-out
def test_retention_purge_deletes_only_expired_inputs(store, root, clock, db_url, capsys):
    ann = consenting_member(store)
    old = store.submit(ann, [photo(root, "uploads/old.jpg")], ADMIN)
    store.add_outputs(old.id, [photo(root, "team/members/1/out/old_web.jpg")], "standardizer")
    clock.advance(days=20)
    store.submit(ann, [photo(root, "uploads/new.jpg")], ADMIN)
    clock.advance(days=9)  # old input is 29 days old (guide keeps 30)
    assert store.purge_expired().files_deleted == 0
    # The CLI purges as of --now: the old input is 31 days old then, the new one 11.
    now = (T0 + timedelta(days=31)).isoformat()
    assert team_cli.main(["team", "purge", "--db", db_url, "--data-dir", str(root), "--now", now]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["reason"], summary["files_deleted"], summary["members"]) == ("retention", 1, [ann])
    assert not (root / "uploads/old.jpg").exists() and (root / "uploads/new.jpg").exists()
    assert (root / "team/members/1/out/old_web.jpg").exists()  # retention is for inputs only
    assert store.submission(old.id).inputs == ()
    assert store.purge_expired(now=T0 + timedelta(days=31)).file_ids == []  # idempotent
    assert [e.action for e in store.audit_entries(action="retention.purge")] == ["retention.purge"]
    assert team_cli.main(["team", "audit", "--json", "--db", db_url, "--data-dir", str(root),
                          "--action", "retention.purge"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["details"]["files"] == summary["file_ids"]


def test_opt_out_deletes_every_file_of_the_member_and_only_theirs(store, root):
    def make_member(first: str) -> tuple[int, list[Path]]:
        m = consenting_member(store, first, "Zed")
        mine = member_dir(m, root, create=True)
        tag = first.lower()
        sub = store.submit(m, [photo(root, f"uploads/{tag}_1.jpg"), photo(root, f"uploads/{tag}_2.jpg")], ADMIN)
        store.register_file(m, "embedding", photo(root, f"team/members/{m}/{tag}_embedding.npy"), "standardizer")
        lora = mine / "lora"
        photo(root, f"team/members/{m}/lora/pytorch_lora_weights.safetensors")
        photo(root, f"team/members/{m}/lora/checkpoint/optimizer.bin")
        store.register_file(m, "lora", lora, "trainer")
        store.add_outputs(sub.id, [photo(root, f"exports/{tag}_web-bio_1200x1500.jpg")], "standardizer")
        photo(root, f"team/members/{m}/cache/{tag}_unregistered.png")  # written by other code, not registered
        return m, [p for p in root.rglob("*") if p.is_file() and tag in str(p.relative_to(root)).lower()]

    alice, alice_files = make_member("Alicia")
    bob, bob_files = make_member("Bob")
    assert len(alice_files) >= 5 and len(bob_files) >= 5

    summary = store.opt_out(alice, ADMIN)
    # 5 registered: 2 inputs, the embedding, the LoRA folder (one entry), the output; plus the member folder.
    assert summary.files_deleted == 5 and summary.folders_removed == 1 and not summary.errors

    remaining = [p for p in root.rglob("*") if p.is_file()]
    assert not [p for p in remaining if "alicia" in str(p.relative_to(root)).lower()]
    assert not member_dir(alice, root).exists()
    assert all(p.is_file() for p in bob_files)
    if store.engine.dialect.name == "sqlite":
        # Even the database files in the data folder no longer hold her name.
        assert not [p for p in remaining if b"Alicia" in p.read_bytes()]
    with pytest.raises(ConsentError):
        store.require_consent(alice)
    assert store.current_consent(alice).action == "withdrawn"
    gone = store.member(alice)
    assert (gone.first, gone.last, gone.email, gone.active) == ("", "", None, False)
    assert {s.status for s in store.submissions(member_id=alice)} == {"withdrawn"}
    assert store.member_files(alice) == []
    store.require_consent(bob)
    [entry] = store.audit_entries(action="member.opt_out")
    assert entry.target == f"member:{alice}" and entry.details["deleted"] == 5


# --------------------------------------------------------------------------- app start
def test_sweep_at_start_purges_and_never_raises(tmp_path, clock):
    assert sweep_at_start(tmp_path / "empty") == {**sweep_at_start(tmp_path / "empty"), "files_deleted": 0}
    assert not (tmp_path / "empty" / "team").exists()  # no store yet: nothing created
    root = tmp_path / "data"
    with TeamStore(root=root, clock=clock) as s:
        s.save_guide(ACME, ADMIN)
        m = consenting_member(s)
        s.submit(m, [photo(root, "uploads/a.jpg")], ADMIN)  # made at T0, long expired by the real now
    result = sweep_at_start(root)
    assert result["files_deleted"] == 1 and not (root / "uploads/a.jpg").exists()
    assert sweep_at_start(root, url="mysql://nobody@nowhere/db") == {"error": "ValueError"}
    broken = tmp_path / "broken"
    (broken / "team").mkdir(parents=True)
    (broken / "team" / "team.db").write_bytes(b"this is not a database" * 100)
    assert "error" in sweep_at_start(broken)


def test_cli_purge_runs_as_a_command(store, root, db_url):
    """A real process, as a cron job would run it: JSON on stdout, exit 0; a bad --now is a usage error."""
    env = {**os.environ, "HEADSHOT_DATA_DIR": str(root)}
    cmd = [sys.executable, "-m", "pipeline.team.cli", "team", "purge", "--db", db_url]
    done = subprocess.run(cmd + ["--now", "2030-01-01T00:00:00Z"], capture_output=True, text=True, env=env,
                          timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reason"] == "retention"
    bad = subprocess.run(cmd + ["--now", "next tuesday"], capture_output=True, text=True, env=env, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert bad.returncode == 2 and "--now" in bad.stderr


def test_concurrent_writers_wait_instead_of_failing(store, db_url, root):
    """Two app processes (here: two engines, four threads) writing at once: the busy timeout and
    write locks serialise them; nothing fails with "database is locked" and nothing is lost."""
    from concurrent.futures import ThreadPoolExecutor

    other = TeamStore(url=db_url, root=root)
    try:
        def add(n: int) -> int:
            s = store if n % 2 else other
            m = s.add_member("acme", f"P{n}", "Q", ADMIN)
            s.record_consent(m.id, NOTICE, ["team_page"], given_by=m.id)
            return m.id

        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(add, range(24)))
        assert len(set(ids)) == 24 and all(store.has_consent(i, "team_page") for i in ids)
        assert len(store.audit_entries(action="consent.given")) == 24
    finally:
        other.close()
