"""Speed and memory benchmark for team standardisation: phone-sized member photos through
``standardize_batch`` (crop, colour, background, masters, report, contact sheet).

Builds ``--n`` phone-like JPEGs (12 MP, 4032x3024 stored pixels with EXIF orientation, q92, sRGB ICC;
``capture_bench.make_phone_jpeg``) from real photos of several people in ../shared/testdata/faces,
in a child process (so that making them does not count towards this process's memory high-water
mark), into a temporary folder that is deleted afterwards. Then it runs one cold call on a few
photos (model loading) and one timed batch over all of them, and prints JSON on stdout:

- photos per second (wall) and CPU seconds per photo;
- peak memory: the process's RSS high-water mark (``resource.getrusage``), and RSS sampled after
  each finished photo, so growth with batch size would show (it should stay flat);
- the verdicts, and the targets (>= 4 photos/s on 2 cores, peak < 1.5 GB) with pass/fail booleans.

Run:  .venv/bin/python benchmarks/standardize_bench.py [--n 50] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FACES_DIR, loadavg, machine, r, stdout_to_stderr, versions  # noqa: E402

log = logging.getLogger("standardize_bench")

TARGET_PHOTOS_PER_S = 4.0
TARGET_PEAK_MB = 1536
# Single-person photos of seven people with room around the head (several of each person are
# tight crops, which the standard framing flags; they still count towards the timing).
SOURCES = ("p01_img1.jpg", "p01_img7.jpg", "p02_img48.jpg", "p02_img8.jpg", "p02_img9.jpg", "p04_img29.jpg",
           "p05_img35.jpg", "p05_img36.jpg", "p05_img34.jpg", "p06_img20.jpg", "p07_img24.jpg", "p03_img16.jpg")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_set(n: int, folder: Path) -> list[Path]:
    """Phone JPEGs named like member uploads (``first_last.jpg``)."""
    from capture_bench import _srgb_icc, make_phone_jpeg

    icc = _srgb_icc()
    jobs = [(FACES_DIR / SOURCES[i % len(SOURCES)], folder / f"member{i:03d}_{SOURCES[i % len(SOURCES)][:3]}.jpg",
             i // len(SOURCES), i, icc) for i in range(n)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda j: make_phone_jpeg(*j), jobs))
    return [j[1] for j in jobs]


def run(n: int, workers: int, folder: Path, background: str | None) -> dict:
    t0 = time.perf_counter()
    from pipeline.capture import default_analyzer
    from pipeline.presets import load_style_guide
    from pipeline.standardize import standardize_batch
    import_s = time.perf_counter() - t0

    files = sorted(folder.glob("*.jpg"))
    sizes = [f.stat().st_size for f in files]
    guide = load_style_guide(REPO / "presets" / "styleguides" / "acme.yaml")
    analyzer = default_analyzer()
    with tempfile.TemporaryDirectory(prefix="standardize_bench_out_") as out:
        t0 = time.perf_counter()
        standardize_batch(files[:min(len(files), 2 * workers)], guide, Path(out) / "cold", analyzer=analyzer,
                          workers=workers, background=background)
        cold_s = time.perf_counter() - t0
        rss_after_cold = _rss_mb()
        samples: list[float] = []
        load_before = loadavg()
        c0, t0 = time.process_time(), time.perf_counter()
        report = standardize_batch(files, guide, Path(out) / "batch", analyzer=analyzer, workers=workers,
                                   background=background, progress=lambda k: samples.append(_rss_mb()))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        load_after = loadavg()
        written = sum(1 for _ in (Path(out) / "batch" / "portraits").iterdir())
    verdicts = [p.verdict for p in report.photos]
    cpu_count = os.cpu_count()
    peak = _peak_mb()
    tenth = max(1, len(samples) // 10)
    return {
        "benchmark": "standardize_batch",
        "photos": n,
        "workers": workers,
        "guide": guide.key,
        "background": report.background,
        "output_size": list(report.size),
        "photo_pixels": [4032, 3024],
        "photo_mb": {"min": r(min(sizes) / 1e6), "median": r(statistics.median(sizes) / 1e6), "max": r(max(sizes) / 1e6)},
        "import_s": r(import_s),
        "cold_s": r(cold_s),
        "total_s": r(wall),
        "photos_per_s": r(n / wall),
        "per_photo_s": r(wall / n),
        "cpu_s": r(cpu),
        "cpu_per_photo_s": r(cpu / n),
        "parallelism": r(cpu / wall),
        "masters_written": written,
        "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
        "eye_line_std": report.team["eye_line"]["std"] if report.team.get("eye_line") else None,
        "memory_mb": {
            "peak_rss": r(peak),
            "rss_after_cold": r(rss_after_cold),
            # RSS after the first and the last tenth of the photos: flat means memory does not grow with n.
            "rss_first_tenth": r(max(samples[:tenth])) if samples else None,
            "rss_last_tenth": r(max(samples[-tenth:])) if samples else None,
        },
        "cpu_count": cpu_count,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "versions": versions("mediapipe"),
        "machine": machine(),
        "targets": {
            "photos_per_s_min": TARGET_PHOTOS_PER_S,
            "speed_pass": n / wall >= TARGET_PHOTOS_PER_S,
            "peak_mb_max": TARGET_PEAK_MB,
            "memory_pass": peak < TARGET_PEAK_MB,
            "target_cores": 2,
            "measured_on_target_cores": cpu_count == 2,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50, help="number of member photos (default 50)")
    ap.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")
    ap.add_argument("--background", default=None, help="approved background id (default: the guide's)")
    ap.add_argument("--make", default=None, metavar="DIR", help=argparse.SUPPRESS)  # child: make the photos only
    args = ap.parse_args(argv)
    if args.n < 1 or args.workers < 1:
        ap.error("--n and --workers must be at least 1")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    if args.make:
        make_set(args.n, Path(args.make))
        return 0
    with tempfile.TemporaryDirectory(prefix="standardize_bench_") as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--n", str(args.n), "--make", tmp], check=True)
        log.info("made %d phone JPEGs in %.1f s (child process)", args.n, time.perf_counter() - t0)
        with stdout_to_stderr():
            result = run(args.n, args.workers, Path(tmp), args.background)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
