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
