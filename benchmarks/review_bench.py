"""Speed benchmark for the review gate (``review_many``) and the signed export (``export_bundle``).

Builds ``--n`` 1024x1024 JPEGs (quality 92) from real photos of p01..p07 in
../shared/testdata/faces (each photo resized to cover the square and centre-cropped, cycling
through the photos until there are ``--n``), in a temporary folder deleted afterwards.

It then measures, and prints as JSON on stdout (logs go to stderr):

- ``build_reference`` on p01's original photos (timed on its own, model loading included);
- one warm-up ``review_many`` on W images (first use of each worker's models), reported separately;
- ``review_many(files, workers=W)`` end to end (decode included): total seconds, reviews/s,
  and each image's ``review_image`` latency inside that run (median / max; with W threads
  these are latencies under contention, not single-thread times);
- ``--bundles`` calls of ``export_bundle`` (one image each; specs linkedin + web-bio +
  directory + avatar = 5 files), all signed with ONE signing identity created once in a
  temporary data dir (its creation is timed separately). Inside each bundle the time spent in
  ``export.render.save`` (JPEG encode + write) and in ``provenance.sign_file`` (C2PA signing) is
  measured by wrapping those two functions; the rest (decode, sRGB, crop/resize with LANCZOS,
  hashing, zip) is reported as ``other_s``.
- the targets (>= 10 reviews/s on 2 cores; export well under 0.5 s per bundle) with pass booleans.

Run:  .venv/bin/python benchmarks/review_bench.py [--n 50] [--bundles 10] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import FACES_DIR, loadavg, machine, r, stdout_to_stderr, timed, versions  # noqa: E402

log = logging.getLogger("review_bench")

SIDE = 1024
JPEG_QUALITY = 92
PEOPLE = tuple(f"p{i:02d}" for i in range(1, 8))
REFERENCE_PERSON = "p01"
BUNDLE_SPECS = ("linkedin", "web-bio", "directory", "avatar")
TARGET_REVIEWS_PER_S = 10.0  # on 2 cores
TARGET_EXPORT_S = 0.5  # per bundle, "well under"


# --------------------------------------------------------------------------- test images

def _source_photos() -> list[Path]:
    files = [f for p in PEOPLE for f in sorted(FACES_DIR.glob(f"{p}_*.jpg"))]
    if not files:
        raise SystemExit(f"No photos of {PEOPLE[0]}..{PEOPLE[-1]} in {FACES_DIR}.")
    return files


def _make_square(src: Path, dst: Path) -> int:
    img = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    img = ImageOps.fit(img, (SIDE, SIDE), Image.Resampling.BICUBIC)  # cover, then centre-crop
    img.save(dst, "JPEG", quality=JPEG_QUALITY)
    return dst.stat().st_size


def make_image_set(n: int, folder: Path) -> list[Path]:
    sources = _source_photos()
    jobs = [(sources[i % len(sources)], folder / f"review_{i:03d}_{sources[i % len(sources)].stem}.jpg")
            for i in range(n)]
    # Identical sources give identical files: encode each distinct source once, then copy.
    made: dict[Path, Path] = {}
    unique = list(dict.fromkeys(s for s, _ in jobs))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda s: _make_square(s, folder / f"src_{s.stem}.jpg"), unique))
    for s in unique:
        made[s] = folder / f"src_{s.stem}.jpg"
    for s, d in jobs:
        d.write_bytes(made[s].read_bytes())
    for p in made.values():
        p.unlink()
    log.info("made %d %dx%d JPEGs from %d photos of %s..%s", n, SIDE, SIDE, len(sources), PEOPLE[0], PEOPLE[-1])
    return [d for _, d in jobs]


# --------------------------------------------------------------------------- helpers











class _Stopwatch:
    """Wraps a module function so each call's wall time is added to a thread-safe list."""

    def __init__(self, module, name: str):
        self.module, self.name = module, name
        self.original = getattr(module, name)
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __enter__(self):
        orig = self.original

        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                with self._lock:
                    self.times.append(dt)

        setattr(self.module, self.name, wrapper)
        return self

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.original)
        return False

    def take(self) -> list[float]:
        with self._lock:
            out, self.times = self.times, []
        return out


# --------------------------------------------------------------------------- measurements

def run(n: int, bundles: int, workers: int) -> dict:
    t0 = time.perf_counter()
    from pipeline import export as export_mod
    from pipeline import provenance
    from pipeline import review as review_mod
    import_s = time.perf_counter() - t0

    ref_files = sorted(FACES_DIR.glob(f"{REFERENCE_PERSON}_*.jpg"))
    if not ref_files:
        raise SystemExit(f"No photos of {REFERENCE_PERSON} in {FACES_DIR}.")

    with tempfile.TemporaryDirectory(prefix="review_bench_") as tmp:
        tmp = Path(tmp)
        img_dir = tmp / "images"
        img_dir.mkdir()
        files = make_image_set(n, img_dir)
        sizes = [f.stat().st_size for f in files]

        # Reference (cold: the analyzer's models load here).
        build_s, reference = timed(review_mod.build_reference, ref_files)
        log.info("build_reference (%d photos of %s): %.3f s", len(ref_files), REFERENCE_PERSON, build_s)

        # Warm-up: one review_many call on W images, so each worker's model set (and the review-only
        # graphs, e.g. the person mask) is created before timing.
        warm_s, _ = timed(review_mod.review_many, files[:workers], reference, workers=workers)
        log.info("warm-up review_many (%d images): %.3f s", min(workers, n), warm_s)

        load_before = loadavg()
        if load_before and load_before[0] > 0.5:
            log.warning("load average %.2f before timing: other processes compete for the cores", load_before[0])

        # review_many looks review_image up in the module at call time, so the stopwatch sees each image.
        with _Stopwatch(review_mod, "review_image") as sw:
            c0 = time.process_time()
            review_s, reports = timed(review_mod.review_many, files, reference, workers=workers)
            review_cpu = time.process_time() - c0
            per_image = sw.take()
        log.info("review_many: %d images in %.3f s (%.1f /s)", n, review_s, n / review_s)
        verdicts = [r.verdict for r in reports]
        # The same run without the second recognizer (what a bulk gate can choose).
        single_s, _ = timed(review_mod.review_many, files, reference, workers=workers, second=False)
        log.info("review_many without the second recognizer: %.3f s (%.1f /s)", single_s, n / single_s)

        # Export: one signing identity, created once.
        data_dir = tmp / "data"
        ident_s, identity = timed(provenance.ensure_signing_identity, data_dir)
        log.info("signing identity created in %.3f s", ident_s)

        bundle_times, encode_times, sign_times, file_counts, zip_bytes = [], [], [], [], []
        with _Stopwatch(export_mod.render, "save") as save_sw, _Stopwatch(provenance, "sign_file") as sign_sw:
            # Warm-up bundle (first c2pa / ImageCms use), not counted.
            cold_export_s, _ = timed(export_mod.export_bundle, files[0], BUNDLE_SPECS, tmp / "out_warm",
                                      identity=identity, person={"first": "Bench", "last": "Warm"})
            save_sw.take(), sign_sw.take()
            for i in range(bundles):
                src = files[i % len(files)]
                dt, zip_path = timed(export_mod.export_bundle, src, BUNDLE_SPECS, tmp / f"out_{i:02d}",
                                      identity=identity, person={"first": "Bench", "last": f"Person{i}"})
                enc, sig = save_sw.take(), sign_sw.take()
                bundle_times.append(dt)
                encode_times.append(sum(enc))
                sign_times.append(sum(sig))
                file_counts.append(len(sig))
                zip_bytes.append(Path(zip_path).stat().st_size)
                log.info("bundle %d/%d: %.3f s (encode %.3f s, sign %.3f s, %d files)",
                         i + 1, bundles, dt, sum(enc), sum(sig), len(sig))
        load_after = loadavg()

    other = [b - e - s for b, e, s in zip(bundle_times, encode_times, sign_times)]
    reviews_per_s = n / review_s
    export_median = statistics.median(bundle_times)
    cpu_count = os.cpu_count()

    def stats(xs: list[float]) -> dict:
        return {"median": r(statistics.median(xs)), "min": r(min(xs)), "max": r(max(xs)),
                "mean": r(statistics.fmean(xs))}

    return {
        "benchmark": "review_and_export",
        "review": {
            "images": n,
            "workers": workers,
            "image_pixels": [SIDE, SIDE],
            "jpeg_quality": JPEG_QUALITY,
            "sources": f"{PEOPLE[0]}..{PEOPLE[-1]} in shared/testdata/faces, cycled",
            "image_kb": {"min": r(min(sizes) / 1e3), "median": r(statistics.median(sizes) / 1e3),
                         "max": r(max(sizes) / 1e3)},
            "reference_person": REFERENCE_PERSON,
            "reference_photos": len(ref_files),
            "reference_faces": len(reference.files),
            "build_reference_s": r(build_s),
            "warm_up_review_many_s": r(warm_s),
            "total_s": r(review_s),
            "reviews_per_s": r(reviews_per_s),  # both recognizers (the default)
            "second_recognizer": (review_mod.second_recognizer()[1]),
            "reviews_per_s_without_second_recognizer": r(n / single_s),
            "total_cpu_s": r(review_cpu),
            # CPU seconds per wall second: ~workers when the threads run in parallel.
            "parallelism": r(review_cpu / review_s),
            # Latency of each review_image call inside review_many (W threads share the cores).
            "per_image_s": stats(per_image),
            "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
        },
        "export": {
            "bundles": bundles,
            "specs": list(BUNDLE_SPECS),
            "files_per_bundle": max(file_counts) if file_counts else 0,
            "images_per_bundle": 1,
            "function": "export_bundle (centre crop; no face framing)",
            "signing_identity_create_s": r(ident_s),
            "warm_up_bundle_s": r(cold_export_s),
            "per_bundle_s": stats(bundle_times),
            # Split of each bundle: export.render.save (JPEG encode + write), provenance.sign_file
            # (C2PA manifest + signature, file rewrite), other (decode, sRGB, LANCZOS resizes, hashing, zip).
            "jpeg_encode_s": stats(encode_times),
            "c2pa_sign_s": stats(sign_times),
            "other_s": stats(other),
            "zip_kb_median": r(statistics.median(zip_bytes) / 1e3),
        },
        "import_s": r(import_s),
        "cpu_count": cpu_count,
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpu_count,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "versions": versions("mediapipe", "c2pa"),
        "machine": machine(),
        "targets": {
            "reviews_per_s_min": TARGET_REVIEWS_PER_S,
            "reviews_pass": reviews_per_s >= TARGET_REVIEWS_PER_S,
            "reviews_pass_without_second_recognizer": n / single_s >= TARGET_REVIEWS_PER_S,
            "export_s_per_bundle_max": TARGET_EXPORT_S,
            "export_median_pass": export_median < TARGET_EXPORT_S,
            "export_max_pass": max(bundle_times) < TARGET_EXPORT_S,
            "target_cores": 2,
            "measured_on_target_cores": cpu_count == 2,
        },
    }




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50, help="number of 1024 px images to review (default 50)")
    ap.add_argument("--bundles", type=int, default=10, help="number of export bundles (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="review_many worker threads (default 2)")
    args = ap.parse_args(argv)
    if args.n < 1 or args.bundles < 1 or args.workers < 1:
        ap.error("--n, --bundles and --workers must be at least 1")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    with stdout_to_stderr():
        result = run(args.n, args.bundles, args.workers)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
