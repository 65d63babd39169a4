"""``python -m pipeline team ...``: scriptable governance chores.

Wire into ``pipeline/__main__.py`` with ``team_cli.register(sub)`` where ``sub`` is the subparsers
object; each command sets ``func`` (args -> exit code) like the others.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FLAGGED, EXIT_USAGE = 0, 1, 2


def _parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)  # a bare time is read as UTC


def _open(args: argparse.Namespace):
    from .store import TeamStore

    return TeamStore(url=args.db, root=Path(args.data_dir) if args.data_dir else None)


def _dump(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _purge(args: argparse.Namespace) -> int:
    try:
        now = _parse_now(args.now)
    except ValueError:
        return _usage(f"--now must be an ISO date or time, got {args.now!r}")
    with _open(args) as store:
        summary = store.purge_expired(now=now, actor=args.actor)
    _dump(summary.to_dict())
    return EXIT_FLAGGED if summary.errors else EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    with _open(args) as store:
        entries = store.audit_entries(target=args.target, action=args.action, limit=args.limit)
    if args.json:
        _dump([e.to_dict() for e in entries])
    else:
        for e in entries:
            print(f"{e.at.isoformat()} {e.actor:20s} {e.action:22s} {e.target:20s} "
                  f"{json.dumps(e.details, sort_keys=True)}")
    return EXIT_OK


def _opt_out(args: argparse.Namespace) -> int:
    from .errors import NotFound

    with _open(args) as store:
        try:
            summary = store.opt_out(args.member_id, actor=args.actor)
        except NotFound as e:
            return _usage(str(e))
    _dump(summary.to_dict())
    return EXIT_FLAGGED if summary.errors else EXIT_OK


def _guide(args: argparse.Namespace) -> int:
    from ..presets import PresetError

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return _usage(f"cannot read {args.file}: {e}")
    with _open(args) as store:
        try:
            version = store.save_guide(text, args.actor)
        except (PresetError, ValueError) as e:
            return _usage(str(e))
    _dump({"guide": version.key, "sha256": version.sha256})
    return EXIT_OK


def _members(args: argparse.Namespace) -> int:
    from .codes import consent_code
    from .workflow import add_people, read_people_csv

    with _open(args) as store:
        if args.csv:
            try:
                people = read_people_csv(Path(args.csv).read_text(encoding="utf-8-sig"))
                add_people(store, args.guide, people, args.actor)
            except (OSError, ValueError) as e:
                return _usage(str(e))
        rows = []
        for m in store.members(args.guide):
            current = store.current_consent(m.id)
            row = {"id": m.id, "first": m.first, "last": m.last,
                   "consent": (current.action if current else "none"),
                   "uses": list(current.uses) if current and current.given else []}
            if args.codes:  # to hand to each member; only for whoever can read the data folder anyway
                row["code"] = consent_code(m.id, store.root)
            rows.append(row)
    _dump(rows)
    return EXIT_OK


def _consent(args: argparse.Namespace) -> int:
    from .codes import check_code
    from .errors import ConsentError

    with _open(args) as store:
        if not check_code(args.member_id, args.code, store.root):
            return _usage("that consent code is not this member's")
        notice = store.current_guide(store.member(args.member_id).guide_name).guide.governance.notice_version
        try:
            record = store.record_consent(args.member_id, notice, args.use, given_by=f"member:{args.member_id}")
        except ConsentError as e:
            return _usage(str(e))
    _dump(record.to_dict())
    return EXIT_OK


def _enrol(args: argparse.Namespace) -> int:
    import tempfile

    from ..capture import expand_sources
    from .workflow import enrol_photos, read_people_csv, unpack_uploads

    files = expand_sources(args.photos)
    if missing := [str(f) for f in files if not f.exists()]:
        return _usage(f"no such file: {', '.join(missing)}")
    with _open(args) as store, tempfile.TemporaryDirectory() as tmp:
        try:
            people = {r["file"]: r for r in read_people_csv(Path(args.csv).read_text(encoding="utf-8-sig"))
                      if r["file"]} if args.csv else None
        except (OSError, ValueError) as e:
            return _usage(str(e))
        photos, problems = unpack_uploads(files, tmp)
        out = enrol_photos(store, args.guide, photos, args.actor, people)
    _dump({"created": out.created, "submitted": out.submitted, "waiting_consent": out.waiting_consent,
           "problems": problems + out.problems})
    return EXIT_FLAGGED if out.waiting_consent or problems or out.problems else EXIT_OK


def _standardize(args: argparse.Namespace) -> int:
    from .workflow import standardize_queue

    with _open(args) as store:
        reports = standardize_queue(store, args.guide, args.actor, args.out, background=args.background)
    _dump([r.to_dict() for r in reports])
    failed = any(p.verdict != "ok" for r in reports for p in r.photos)
    return EXIT_FLAGGED if failed else EXIT_OK


def _restandardize(args: argparse.Namespace) -> int:
    from .workflow import restandardize_outdated

    with _open(args) as store:
        plan = restandardize_outdated(store, args.guide, args.actor, args.member or None)
    _dump(plan.to_dict())
    return EXIT_OK


def _decide(args: argparse.Namespace) -> int:
    from .errors import TeamError

    with _open(args) as store:
        try:
            if args.team_command == "approve":
                sub = store.approve(args.submission_id, args.actor, args.reason)
            else:
                sub = store.reject(args.submission_id, args.actor, args.reason or "")
        except (TeamError, PermissionError) as e:
            return _usage(str(e))
    _dump(sub.to_dict())
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from .errors import TeamError
    from .workflow import export_library

    with _open(args) as store:
        try:
            zip_path = export_library(store, args.guide, args.actor, args.out)
        except TeamError as e:
            return _usage(str(e))
    _dump({"zip": str(zip_path), "manifest": str(Path(args.out) / "manifest.json")})
    return EXIT_OK


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Add ``team`` with its sub-commands to the main CLI's subparsers."""
    team = subparsers.add_parser("team", help="team store chores: retention purge, audit log, opt-out")
    cmds = team.add_subparsers(dest="team_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", default=None, metavar="URL",
                       help="database URL (default: $HEADSHOT_TEAM_DB, else <data folder>/team/team.db)")
        p.add_argument("--data-dir", default=None, metavar="DIR", help="data folder (default $HEADSHOT_DATA_DIR)")

    purge = cmds.add_parser("purge", help="delete input photos past their guide's retention; prints JSON")
    common(purge)
    purge.add_argument("--now", default=None, metavar="ISO", help="purge as of this time (default: now, UTC)")
    purge.add_argument("--actor", default="system", help="who runs it, for the audit log")
    purge.set_defaults(func=_purge)

    audit = cmds.add_parser("audit", help="print the audit log")
    common(audit)
    audit.add_argument("--json", action="store_true")
    audit.add_argument("--target", default=None, help="only this target, e.g. member:3")
    audit.add_argument("--action", default=None, help="only this action, e.g. member.opt_out")
    audit.add_argument("--limit", type=int, default=None, help="only the newest N entries")
    audit.set_defaults(func=_audit)

    out = cmds.add_parser("opt-out", help="delete everything about a member and withdraw consent; prints JSON")
    common(out)
    out.add_argument("member_id", type=int)
    out.add_argument("--actor", required=True, help="who handles the request, for the audit log")
    out.set_defaults(func=_opt_out)

    # The governed workflow: guide -> members -> (member) consent -> enrol -> standardize -> decide -> export.
    g = cmds.add_parser("guide", help="save a style guide YAML as a new version (same text: no new version)")
    common(g)
    g.add_argument("file")
    g.add_argument("--actor", required=True)
    g.set_defaults(func=_guide)

    m = cmds.add_parser("members", help="list members and consent (add them from a CSV first with --csv)")
    common(m)
    m.add_argument("--guide", required=True)
    m.add_argument("--csv", default=None, help="first,last[,email][,username][,file] rows to add")
    m.add_argument("--codes", action="store_true", help="include each member's personal consent code")
    m.add_argument("--actor", default="admin")
    m.set_defaults(func=_members)

    c = cmds.add_parser("consent", help="a member gives consent with their personal code")
    common(c)
    c.add_argument("member_id", type=int)
    c.add_argument("--code", required=True)
    c.add_argument("--use", action="append", default=[], help="a use the member agrees to (repeat)")
    c.set_defaults(func=_consent)

    e = cmds.add_parser("enrol", help="photos (or zips) of members; kept only for members who consent")
    common(e)
    e.add_argument("photos", nargs="+", metavar="PHOTO_OR_DIR")
    e.add_argument("--guide", required=True)
    e.add_argument("--csv", default=None, help="names per file (column file); else names come from file names")
    e.add_argument("--actor", required=True)
    e.set_defaults(func=_enrol)

    s = cmds.add_parser("standardize", help="standardise every pending submission; prints the reports")
    common(s)
    s.add_argument("--guide", required=True)
    s.add_argument("--out", required=True, metavar="DIR", help="work folder for reports and contact sheets")
    s.add_argument("--background", default=None)
    s.add_argument("--actor", required=True)
    s.set_defaults(func=_standardize)

    r = cmds.add_parser("restandardize", help="queue members on an older guide version (then run standardize)")
    common(r)
    r.add_argument("--guide", required=True)
    r.add_argument("--member", type=int, action="append", default=[], help="only these members (default: outdated)")
    r.add_argument("--actor", required=True)
    r.set_defaults(func=_restandardize)

    for name in ("approve", "reject"):
        d = cmds.add_parser(name, help=f"{name} a submission (approvers of the guide only)")
        common(d)
        d.add_argument("submission_id", type=int)
        d.add_argument("--actor", required=True)
        d.add_argument("--reason", default=None, required=name == "reject")
        d.set_defaults(func=_decide)

    x = cmds.add_parser("export", help="the approved library as one signed zip")
    common(x)
    x.add_argument("--guide", required=True)
    x.add_argument("--out", required=True, metavar="DIR")
    x.add_argument("--actor", required=True)
    x.set_defaults(func=_export)
    return team


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m pipeline.team.cli purge ...``) until the main CLI wires it."""
    parser = argparse.ArgumentParser(prog="python -m pipeline")
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
