"""Command line: ``python -m pipeline <command> ...`` (contracts in ARCHITECTURE.md).

Exit codes: 0 every item accepted, 1 some item rejected or warned, 2 usage error or unusable input.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

EXIT_OK, EXIT_FLAGGED, EXIT_USAGE = 0, 1, 2


def _capture(args: argparse.Namespace) -> int:
    from .capture import check_capture, expand_sources

    files = expand_sources(args.paths)
    missing = [str(f) for f in files if not f.exists()]
    if missing or not files:
        print(f"error: no such file: {', '.join(missing)}" if missing else "error: no photos given", file=sys.stderr)
        return EXIT_USAGE
    report = check_capture(files, workers=args.workers)
    unusable = all(p.has("unreadable") or p.has("too_large") for p in report.photos)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_capture(report)
    return EXIT_USAGE if unusable else report.exit_code


def _print_capture(report) -> None:
    for p in report.photos:
        mark = f"#{p.rank}" if p.selected else "  "
        print(f"{p.verdict.upper():7s} {mark:>3s} {p.file}")
        for r in p.reasons:
            print(f"          - [{r.code}] {r.message}")
    s = report.set
    print(f"\nSet: {s.verdict.upper()} ({s.usable} usable of {s.total}); selected {len(s.selected)} photos")
    for r in s.reasons:
        print(f"  - [{r.code}] {r.message}")
    for line in s.advice:
        print(f"  * {line}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="Headshot Studio pipeline")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture", help="check a capture set of selfies")
    cap.add_argument("paths", nargs="+", metavar="PHOTO_OR_DIR")
    cap.add_argument("--json", action="store_true", help="print the report as JSON")
    cap.add_argument("--workers", type=int, default=2, help="parallel threads (default 2)")
    cap.set_defaults(func=_capture)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
