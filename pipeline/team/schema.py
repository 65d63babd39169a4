"""Tables of the team store (SQLAlchemy Core) and the DDL that makes the audit log append-only.

One schema for SQLite and PostgreSQL. Only the append-only triggers differ per dialect, because
triggers are not portable SQL; everything else goes through SQLAlchemy.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text, UniqueConstraint,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out. SQLite has no time zones, so it stores naive UTC."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the team store only takes time-zone aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

guide_versions = Table(
    "guide_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("yaml", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("name", "version", name="uq_guide_versions_name_version"),
)

members = Table(
    "members", metadata,
    Column("id", Integer, primary_key=True),
    Column("guide_name", String(64), nullable=False, index=True),
    Column("first", String(200), nullable=False),
    Column("last", String(200), nullable=False),
    Column("email", String(320)),
    Column("external_username", String(96)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("opted_out_at", UTCDateTime),
)

consents = Table(
    "consents", metadata,
    Column("id", Integer, primary_key=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False, index=True),
    Column("guide_name", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("notice_version", String(32), nullable=False),
    Column("uses", Text, nullable=False),  # JSON list, sorted
    Column("given_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("action IN ('given', 'withdrawn')", name="ck_consents_action"),
)

files = Table(
    "files", metadata,
    Column("id", Integer, primary_key=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("path", Text),  # relative to the data folder; NULL once deleted
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    CheckConstraint("kind IN ('input', 'output', 'embedding', 'lora', 'other')", name="ck_files_kind"),
)

submissions = Table(
    "submissions", metadata,
    Column("id", Integer, primary_key=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False, index=True),
    Column("guide_name", String(64), nullable=False),
    Column("guide_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("reviewer", String(100)),
    Column("reason", Text),
    Column("decided_at", UTCDateTime),
    CheckConstraint("status IN ('pending', 'approved', 'rejected', 'withdrawn')", name="ck_submissions_status"),
)
Index("ix_submissions_queue", submissions.c.guide_name, submissions.c.status)

submission_files = Table(
    "submission_files", metadata,
    Column("submission_id", Integer, ForeignKey("submissions.id"), primary_key=True),
    Column("file_id", Integer, ForeignKey("files.id"), primary_key=True),
    Column("role", String(8), nullable=False),
    CheckConstraint("role IN ('input', 'output')", name="ck_submission_files_role"),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(100), nullable=False),
    Column("details", Text, nullable=False),  # small JSON object: ids and counts, never content
)

APPEND_ONLY_MESSAGE = "audit_log is append-only"

# SQLite: RAISE(ABORT) inside BEFORE triggers turns UPDATE/DELETE into an IntegrityError.
_SQLITE_DDL = [
    f"CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
    f"CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
    # Stored guide versions are history too: an edit is a new row, never a rewrite.
    "CREATE TRIGGER IF NOT EXISTS guide_versions_no_update BEFORE UPDATE ON guide_versions "
    "BEGIN SELECT RAISE(ABORT, 'guide versions are never rewritten'); END",
]

# PostgreSQL: one trigger function; TRUNCATE is covered too (it bypasses row triggers). The DDL must
# not contain a percent sign: psycopg reads it as a bind placeholder, so the message is concatenated.
_POSTGRES_DDL = [
    """CREATE OR REPLACE FUNCTION headshot_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only (' || TG_OP || ' refused)';
END $$""",
    """DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_log_append_only'
                 AND tgrelid = 'audit_log'::regclass) THEN
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION headshot_refuse_change();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_log_no_truncate'
                 AND tgrelid = 'audit_log'::regclass) THEN
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
      FOR EACH STATEMENT EXECUTE FUNCTION headshot_refuse_change();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'guide_versions_no_update'
                 AND tgrelid = 'guide_versions'::regclass) THEN
    CREATE TRIGGER guide_versions_no_update BEFORE UPDATE ON guide_versions
      FOR EACH ROW EXECUTE FUNCTION headshot_refuse_change();
  END IF;
END $$""",
]


def protect_tables(conn: Connection) -> None:
    """Install the append-only triggers (idempotent: safe on every open)."""
    ddl: list[str] = {"sqlite": _SQLITE_DDL, "postgresql": _POSTGRES_DDL}.get(conn.dialect.name, [])
    if not ddl:
        raise NotImplementedError(f"the team store supports SQLite and PostgreSQL, not {conn.dialect.name}")
    for statement in ddl:
        conn.exec_driver_sql(statement)


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)
