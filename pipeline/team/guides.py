"""Style guide versions: every saved edit is a new row; a stored version is never rewritten."""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..presets.styleguide import guide_digest, parse_style_guide
from .audit import AuditLayer
from .errors import GuideVersionError, NotFound
from .records import GuideVersion
from .schema import guide_versions

log = logging.getLogger(__name__)


def _record(row) -> GuideVersion:
    return GuideVersion(row.name, row.version, row.yaml, row.sha256, row.created_by, row.created_at)


class GuidesLayer(AuditLayer):
    def save_guide(self, text: str | bytes, actor: str) -> GuideVersion:
        """Store a guide's YAML as ``name@version``.

        The same text again returns the stored version (no new row). A version number that exists
        with different text, or one not above the newest, is refused: bump ``version`` to save an edit.
        """
        guide = parse_style_guide(text)  # validates; raises PresetError naming the key path
        yaml_text = text.decode("utf-8") if isinstance(text, bytes) else text
        digest = guide_digest(yaml_text)
        try:
            with self._write() as conn:
                same = conn.execute(select(guide_versions).where(
                    guide_versions.c.name == guide.name, guide_versions.c.version == guide.version)).first()
                if same is not None:
                    if same.sha256 == digest:
                        return _record(same)
                    raise GuideVersionError(
                        f"{guide.key} is already stored with different text; versions are never rewritten, "
                        f"so save the edit as version {self._newest_version(conn, guide.name) + 1}")
                newest = self._newest_version(conn, guide.name)
                if guide.version <= newest:
                    raise GuideVersionError(f"{guide.key} is older than the stored {guide.name}@{newest}; "
                                            f"save the edit as version {newest + 1}")
                now = self.now()
                conn.execute(guide_versions.insert().values(
                    name=guide.name, version=guide.version, yaml=yaml_text, sha256=digest,
                    created_by=actor, created_at=now))
                self._audit(conn, actor, "guide.save", f"guide:{guide.key}", sha256=digest[:16])
        except IntegrityError:
            # Two admins saved the same version at once: the unique constraint let one through.
            raise GuideVersionError(f"{guide.key} was saved concurrently; reload and bump the version") from None
        log.info("saved style guide %s", guide.key)
        return GuideVersion(guide.name, guide.version, yaml_text, digest, actor, now)

    @staticmethod
    def _newest_version(conn: Connection, name: str) -> int:
        q = select(guide_versions.c.version).where(guide_versions.c.name == name)
        return max(conn.execute(q).scalars().all(), default=0)

    def _current_guide(self, conn: Connection, name: str) -> GuideVersion:
        row = conn.execute(select(guide_versions).where(guide_versions.c.name == name)
                           .order_by(guide_versions.c.version.desc()).limit(1)).first()
        if row is None:
            raise NotFound(f"no style guide named {name!r} is stored")
        return _record(row)

    def current_guide(self, name: str) -> GuideVersion:
        """The newest stored version of a guide."""
        with self._read() as conn:
            return self._current_guide(conn, name)

    def guide_version(self, name: str, version: int) -> GuideVersion:
        with self._read() as conn:
            row = conn.execute(select(guide_versions).where(
                guide_versions.c.name == name, guide_versions.c.version == version)).first()
        if row is None:
            raise NotFound(f"no style guide {name}@{version} is stored")
        return _record(row)

    def guide_names(self) -> list[str]:
        with self._read() as conn:
            return sorted(set(conn.execute(select(guide_versions.c.name)).scalars().all()))

    def guide_history(self, name: str) -> list[GuideVersion]:
        with self._read() as conn:
            rows = conn.execute(select(guide_versions).where(guide_versions.c.name == name)
                                .order_by(guide_versions.c.version)).all()
        return [_record(r) for r in rows]
