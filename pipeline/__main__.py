"""Command line: ``python -m pipeline <command> ...`` (contracts in ARCHITECTURE.md).

Exit codes: 0 every item accepted, 1 some item rejected or warned, 2 usage error or unusable input.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

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


def _train(args: argparse.Namespace) -> int:
    from .capture import expand_sources
    from .train import TrainingError, config_for, train

    photos_dir = Path(args.photos)
    if not photos_dir.is_dir():
        print(f"error: --photos must be a folder of photos: {photos_dir}", file=sys.stderr)
        return EXIT_USAGE
    photos = expand_sources([photos_dir])
    overrides = {k: v for k, v in {"steps": args.steps, "rank": args.rank, "alpha": args.rank,
                                   "learning_rate": args.lr, "resolution": args.resolution, "seed": args.seed,
                                   "chunk_steps": args.chunk_steps, "trigger": args.trigger}.items() if v is not None}
    config = config_for(len(photos), base=args.base, photos=photos, out_dir=str(args.out), **overrides)
    try:
        result = train(config, resume=args.resume)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps({"status": result.status, "step": result.step, "steps": result.steps, "loss": result.loss,
                      "lora": result.lora_path, "skipped_photos": result.skipped_photos, "message": result.message}))
    if result.status != "finished":
        return EXIT_FLAGGED
    return EXIT_FLAGGED if result.skipped_photos else EXIT_OK


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{flag} takes FIELD=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _generate(args: argparse.Namespace) -> int:
    from .generate import ModelUnavailable, PromptTooLong, generate, vary, write_results
    from .presets import PresetError
    from .specs import recompiler, spec_from_preset

    try:
        fields = _pairs(args.set, "--set")
        varied = _pairs([args.vary], "--vary") if args.vary else {}
        spec, _ = spec_from_preset(args.preset, fields, seed=args.seed, base_model=args.base, lora=args.lora,
                                   trigger=args.trigger, steps=args.steps, width=args.width, height=args.height,
                                   guidance_scale=args.guidance)
        specs = [(spec, None, None)]
        for name, values in varied.items():
            new = vary(spec, name, [v.strip() for v in values.split(",") if v.strip()],
                       recompile=recompiler(args.preset, trigger=args.trigger))
            specs = [(s, name, s.fields.get(name, getattr(s, name, None))) for s in new]
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        results, rows = [], []
        for s, name, value in specs:
            for r in generate(s, n=args.n, out_dir=out):
                results.append(r)
                rows.append((r, name, value))
    except (PresetError, ValueError, PromptTooLong, ModelUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = write_results(results, out)
    # Add which field each image varied, so a row of images reads as one experiment.
    data = json.loads(path.read_text())
    for entry, (_, name, value) in zip(data["results"], rows):
        entry["varied"] = {"field": name, "value": value} if name else None
    path.write_text(json.dumps(data, indent=2))
    print(json.dumps({"results": len(results), "file": str(path)}))
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from .export import EXPORT_SPECS, export_framed
    from .intake import IntakeError
    from .presets import PresetError, get_preset, load_style_guide
    from .session import data_root

    try:  # a preset's or style guide's spec overrides (sizes, format, quality)
        specs = (get_preset(args.preset).resolved_export_specs() if args.preset
                 else load_style_guide(args.style_guide).output.resolved_specs() if args.style_guide else EXPORT_SPECS)
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    missing = [p for p in args.images if not Path(p).is_file()]
    unknown = [s for s in args.spec if s not in specs]
    if missing or unknown:
        what = f"no such file: {', '.join(missing)}" if missing else \
            f"unknown spec {', '.join(unknown)}; known: {', '.join(specs)}"
        print(f"error: {what}", file=sys.stderr)
        return EXIT_USAGE
    images = {Path(path).stem: path for path in args.images}
    try:
        zip_path, unframed = export_framed(images, args.spec, args.out, person={"first": args.first, "last": args.last},
                                           generated=not args.real, data_dir=args.data_dir or data_root(), specs=specs)
    except IntakeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # ExportError (e.g. the disk is full): nothing partial is left behind
        print(f"error: export failed: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps({"zip": str(zip_path), "manifest": str(Path(args.out) / "manifest.json"),
                      "unframed": len(unframed)}))
    return EXIT_FLAGGED if unframed else EXIT_OK


def _review(args: argparse.Namespace) -> int:
    from .capture import expand_sources
    from .presets import PresetError
    from .review import build_reference, review_many

    images = expand_sources(args.images)
    missing = [str(p) for p in images if not p.is_file()]
    if missing or not Path(args.reference).is_dir():
        print(f"error: no such file: {', '.join(missing)}" if missing else
              f"error: --reference must be a folder of capture photos: {args.reference}", file=sys.stderr)
        return EXIT_USAGE
    reference = build_reference(expand_sources([args.reference]))
    if not len(reference.files):
        print("error: no face was found in any reference photo", file=sys.stderr)
        return EXIT_USAGE
    try:
        reports = review_many(images, reference, preset=args.preset, workers=args.workers,
                              second=not args.no_second_recognizer)
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        json.dump({"results": [r.to_dict() for r in reports]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in reports:
            print(f"{r.verdict.upper():5s} {r.file}")
            for name in ("identity", "realism", "context"):
                layer = getattr(r, name)
                for reason in layer.reasons:
                    print(f"      {name}: [{reason['code']}] {reason['message']}")
    failed = any(layer.verdict == "fail" for r in reports for layer in (r.identity, r.realism, r.context))
    return EXIT_FLAGGED if failed else EXIT_OK


def _standardize(args: argparse.Namespace) -> int:
    from .capture import expand_sources
    from .presets import PresetError, load_style_guide
    from .standardize import standardize_batch

    try:
        guide = load_style_guide(args.style_guide)
        if args.background:
            guide.background(args.background)  # an unknown id is a usage error, named with the approved ones
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    files = expand_sources(args.paths)
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        print(f"error: no such file: {', '.join(missing)}" if missing else "error: no photos given", file=sys.stderr)
        return EXIT_USAGE
    size = None
    if args.size:
        try:
            size = tuple(int(v) for v in args.size.lower().split("x"))
            if len(size) != 2:
                raise ValueError
        except ValueError:
            print(f"error: --size takes WxH, got {args.size!r}", file=sys.stderr)
            return EXIT_USAGE
    try:
        report = standardize_batch(files, guide, args.out, background=args.background, workers=args.workers,
                                   size=size, export=args.export, data_dir=args.data_dir,
                                   master_format="PNG" if args.png else "JPEG")
    except ValueError as exc:  # e.g. a --size that does not have the guide's aspect
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        _print_standardize(report)
    unusable = all(p.has("unreadable") or p.has("too_large") for p in report.photos)
    return EXIT_USAGE if unusable else report.exit_code


def _print_standardize(report) -> None:
    for p in report.photos:
        m = p.metrics
        where = "" if m.eye_line is None else f"  eyes {m.eye_line:.3f}  head {m.head_height:.3f}"
        print(f"{p.verdict.upper():5s} {p.file}{where}")
        for r in p.reasons:
            print(f"        - [{r.code}] {r.message}")
    t = report.team
    print(f"\nTeam: {t['verdict'].upper()} ({t['ok']} ok, {t['warn']} warn, {t['fail']} fail of {t['members']})")
    for key, label in (("eye_line", "eye line"), ("head_height", "head size"), ("face_cct", "face CCT"),
                       ("background_delta_e", "background ΔE")):
        if t.get(key):
            print(f"  {label}: std {t[key]['std']}, range {t[key]['range']}")
    for o in report.outliers:
        print(f"  * {o['name']}: [{o['code']}] {o['reason']}")
    for k, v in report.files.items():
        if v:
            print(f"  {k}: {v}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="Headshot Studio pipeline")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture", help="check a capture set of selfies")
    cap.add_argument("paths", nargs="+", metavar="PHOTO_OR_DIR")
    cap.add_argument("--json", action="store_true", help="print the report as JSON")
    cap.add_argument("--workers", type=int, default=2, help="parallel threads (default 2)")
    cap.set_defaults(func=_capture)

    tr = sub.add_parser("train", help="train a personal LoRA (resumable)")
    tr.add_argument("--base", required=True, metavar="MODEL", help="Hub repo id or local diffusers folder")
    tr.add_argument("--photos", required=True, metavar="DIR")
    tr.add_argument("--out", required=True, metavar="DIR")
    tr.add_argument("--steps", type=int)
    tr.add_argument("--rank", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--resolution", type=int)
    tr.add_argument("--seed", type=int)
    tr.add_argument("--trigger")
    tr.add_argument("--chunk-steps", type=int, help="stop after this many steps; run again with --resume")
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    tr.set_defaults(func=_train)

    gen = sub.add_parser("generate", help="generate headshots from a preset")
    gen.add_argument("--base", default=None, metavar="MODEL", help="Hub id or local folder (default $HEADSHOT_BASE_MODEL)")
    gen.add_argument("--lora", default=None, metavar="DIR")
    gen.add_argument("--preset", required=True)
    gen.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    gen.add_argument("--vary", default=None, metavar="FIELD=V1,V2,...", help="one field, several values")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--n", type=int, default=1)
    gen.add_argument("--out", required=True, metavar="DIR")
    gen.add_argument("--trigger", default="sks")
    gen.add_argument("--steps", type=int)
    gen.add_argument("--width", type=int)
    gen.add_argument("--height", type=int)
    gen.add_argument("--guidance", type=float)
    gen.set_defaults(func=_generate)

    rv = sub.add_parser("review", help="identity, realism and context check of results")
    rv.add_argument("images", nargs="+", metavar="IMAGE")
    rv.add_argument("--reference", required=True, metavar="DIR", help="the capture photos")
    rv.add_argument("--preset", default=None, help="judge framing and backdrop against this preset")
    rv.add_argument("--json", action="store_true")
    rv.add_argument("--workers", type=int, default=2)
    rv.add_argument("--no-second-recognizer", action="store_true",
                    help="skip the second (dlib) recognizer: a little faster bulk review, no second opinion")
    rv.set_defaults(func=_review)

    ex = sub.add_parser("export", help="export framed, sRGB, XMP-tagged and C2PA-signed files")
    ex.add_argument("images", nargs="+", metavar="IMAGE")
    ex.add_argument("--spec", action="append", required=True, help="linkedin, web-bio, directory, avatar, print")
    ex.add_argument("--out", required=True, metavar="DIR")
    ex.add_argument("--first", default="")
    ex.add_argument("--last", default="")
    ex.add_argument("--real", action="store_true", help="the images are real photos, not generated")
    ex.add_argument("--data-dir", default=None, help="where the signing identity lives (default: the data folder)")
    over = ex.add_mutually_exclusive_group()
    over.add_argument("--preset", default=None, help="apply this preset's export overrides")
    over.add_argument("--style-guide", default=None, metavar="FILE", help="apply this style guide's export overrides")
    ex.set_defaults(func=_export)

    st = sub.add_parser("standardize", help="standardise team photos to a style guide (crop, background, colour)")
    st.add_argument("paths", nargs="+", metavar="PHOTO_OR_DIR")
    st.add_argument("--style-guide", required=True, metavar="FILE", help="a style guide YAML (presets/styleguides/)")
    st.add_argument("--out", required=True, metavar="DIR")
    st.add_argument("--background", default=None, metavar="ID", help="an approved background id (default: the guide's)")
    st.add_argument("--json", action="store_true", help="print the report as JSON")
    st.add_argument("--export", action="store_true", help="also export the guide's specs (signed) under DIR/export")
    st.add_argument("--data-dir", default=None, help="where the signing identity lives (default: the data folder)")
    st.add_argument("--size", default=None, metavar="WxH", help="working size (default 1200 px wide at the guide's aspect)")
    st.add_argument("--png", action="store_true", help="lossless PNG masters instead of JPEG q95")
    st.add_argument("--workers", type=int, default=2, help="parallel threads (default 2)")
    st.set_defaults(func=_standardize)
    from .team.cli import register as register_team  # imports lazily: no cost until a team command runs

    register_team(sub)
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
