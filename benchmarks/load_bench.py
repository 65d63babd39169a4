"""Load benchmark: many users at once through the running app, with isolation checks.

Starts ``app.py`` as a subprocess (like the tests' ``server`` fixture: a temp data dir, a tiny SDXL
pipeline built from configs, a free loopback port), then drives it with ``--clients`` concurrent
gradio_client sessions in threads. Each session uploads ITS OWN capture set: 3-4 real photos of one
of p01..p07 from ../shared/testdata/faces, re-encoded per session (bounded to 1024 px, a
session-specific JPEG quality and brightness, mirrored on odd rounds) so that no two sessions upload
the same bytes even when they share a person. Each session then runs

    check_capture -> confirm_selection -> train (tiny LoRA) -> generate (1 image, own seed)
    -> review (own results) -> review_probe (own held-out photo + a stranger) -> export -> delete

and checks isolation after every step:

- every file the server returns lies in the Gradio cache (content-addressed) or in the session's own
  folder, and no returned path or sha256 is seen by two sessions (all inputs differ by construction,
  so identical outputs would mean a leak);
- the capture report (table, selection and the downloadable capture.json) lists exactly this
  session's uploads, and the session folder on disk holds exactly those photos;
- the generated image carries this session's seed; the review lists exactly this session's results;
- the review identity layer passes the session's own held-out photo and fails a stranger's (so the
  reference is the session's own capture set);
- the export manifest names this session's person and only its own results as sources;
- after delete, the session folder is gone.

Latency per step is measured from submit to result (queue wait included). Queue positions that
gradio_client reports (``job.status()``: rank, queue_size) are recorded. A queue probe then fills the
GPU queue behind a long training run and counts the "queue full" refusals (expected: exactly the
submissions beyond the queue's max_size). The server's peak RSS (VmHWM of it and its children) is
compared with ``--memory-ceiling-mb``.

Prints JSON on stdout (logs go to stderr); exits 1 when any error, isolation failure, queue-probe
mismatch or memory overrun is found.

Run:  .venv/bin/python benchmarks/load_bench.py [--clients 8] [--train-steps 2] [--no-probe]
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from PIL import Image, ImageEnhance, ImageOps

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and `pipeline` importable
    sys.path.insert(0, str(REPO))

from benchmarks._common import FACES_DIR, loadavg, machine, r, versions  # noqa: E402
from tools.app_server import run_app, tiny_app_env  # noqa: E402

log = logging.getLogger("load_bench")

PEOPLE = tuple(f"p{i:02d}" for i in range(1, 8))
MAX_CLIENTS = 16
MAX_SIDE = 1024  # uploads are bounded like a phone's "large" share size; capture cost depends on it
STEPS = ("check_capture", "confirm_selection", "train", "generate", "review", "review_probe", "export", "delete")
GEN_FIELDS = {"Background": "light_grey_seamless", "Wardrobe": "navy_blazer_white_shirt", "Lighting": "soft_octabox",
              "Expression": "approachable_smile", "Framing": "head_and_shoulders"}
EXPORT_SPECS = ["avatar"]  # one file per result keeps the export step cheap but complete (frame, sign, zip)
DEFAULT_CEILING_MB = 4096
POLL_S = 0.05
# SFace cosine to the capture centroid: same person >= 0.49 and different people <= 0.41 on this photo set
# (../shared/testdata/faces/README.md); a held-out or mirrored photo of oneself measured 0.83-0.91 here.
OWN_MIN_SIMILARITY = 0.6


# --------------------------------------------------------------------------- capture sets

@dataclass
class CaptureSet:
    index: int
    person: str
    photos: list[Path]
    own_probe: Path  # the same person, not in the capture set (or a mirrored copy where there is no other)
    other_probe: Path  # a stranger, re-encoded for this session so its bytes are its own
    other_person: str

    @property
    def prefix(self) -> str:
        return f"s{self.index:02d}"

    @property
    def seed(self) -> int:
        return 1000 + self.index

    @property
    def names(self) -> set[str]:
        return {p.name for p in self.photos}


def _pool(person: str) -> list[Path]:
    pool = sorted(FACES_DIR.glob(f"{person}_*.jpg"))
    if not pool:
        raise SystemExit(f"No photos of {person} in {FACES_DIR}.")
    return pool


def _encode(src: Path, dst: Path, *, mirror: bool, brightness: float, quality: int) -> Path:
    with Image.open(src) as im:
        img = ImageOps.exif_transpose(im).convert("RGB")
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    if mirror:
        img = ImageOps.mirror(img)
    if brightness != 1.0:
        img = ImageEnhance.Brightness(img).enhance(brightness)
    img.save(dst, "JPEG", quality=quality)
    return dst


def make_capture_sets(n: int, folder: Path) -> list[CaptureSet]:
    """``n`` capture sets, session i showing person PEOPLE[i % 7]; every file's bytes are unique."""
    folder.mkdir(parents=True, exist_ok=True)
    sets: list[CaptureSet] = []
    for i in range(n):
        person, rnd = PEOPLE[i % len(PEOPLE)], i // len(PEOPLE)
        pool = _pool(person)
        k = rnd % len(pool)
        pool = pool[k:] + pool[:k]  # a later round starts from other photos of the same person
        # Unique bytes per session even for the same pixels: own quality and brightness.
        style = {"mirror": rnd % 2 == 1, "brightness": 1.0 + 0.03 * rnd, "quality": 85 + i % 11}
        if len(pool) >= 4:
            k = min(4, len(pool) - 1)  # 3-4 photos to capture, one held out for the review probe
            capture, probe = [(p, style["mirror"]) for p in pool[:k]], (pool[k], style["mirror"])
        else:  # two photos of this person: the capture set gets a mirrored copy, the probe the other mirror
            capture = [(pool[0], style["mirror"]), (pool[1], style["mirror"]), (pool[0], not style["mirror"])]
            probe = (pool[1], not style["mirror"])
        prefix = f"s{i:02d}"
        photos = []
        for src, mirrored in capture:
            name = f"{prefix}_{src.stem}{'_m' if mirrored else ''}.jpg"
            photos.append(_encode(src, folder / name, **{**style, "mirror": mirrored}))
        own = _encode(probe[0], folder / f"{prefix}_probe_own_{probe[0].stem}.jpg", **{**style, "mirror": probe[1]})
        other_person = PEOPLE[(i + 3) % len(PEOPLE)]
        stranger = _pool(other_person)[0]
        other = _encode(stranger, folder / f"{prefix}_probe_other_{stranger.stem}.jpg", **style)
        sets.append(CaptureSet(i, person, photos, own, other, other_person))
    files = [p for s in sets for p in (*s.photos, s.own_probe, s.other_probe)]
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    if len(set(digests)) != len(digests):
        raise RuntimeError("two capture-set files have the same bytes; the cross-session checks need unique inputs")
    return sets


# --------------------------------------------------------------------------- the server

@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    data_dir: Path
    gradio_dir: Path
    base_model: Path
    log_path: Path
    queue_max_size: int


def build_tiny_base(out_dir: Path) -> Path:
    """The tiny SDXL built from configs, in a child process so this one stays light (no torch)."""
    code = "import sys; from pipeline.tiny import build_tiny_sdxl; build_tiny_sdxl(sys.argv[1], seed=0)"
    subprocess.run([sys.executable, "-c", code, str(out_dir)], cwd=REPO, check=True,
                   env=dict(os.environ, HF_HUB_OFFLINE="1"), stdout=subprocess.DEVNULL)
    return out_dir


@contextlib.contextmanager
def start_server(workdir: Path, base_model: Path | None = None, queue_max_size: int = 64,
                 start_timeout_s: float = 180) -> Iterator[Server]:
    """app.py on a free loopback port with the tiny pipeline env; terminated on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    base_model = base_model or build_tiny_base(workdir / "tiny_sdxl")
    data_dir, gradio_dir = workdir / "data", workdir / "gradio"
    data_dir.mkdir(exist_ok=True)
    gradio_dir.mkdir(exist_ok=True)
    env = tiny_app_env(data_dir, gradio_dir, base_model, GLOG_minloglevel="2",
                       HEADSHOT_QUEUE_MAX_SIZE=str(queue_max_size))
    log_path = workdir / "app.log"
    with run_app(env, log_path, start_timeout_s=start_timeout_s) as (url, proc):
        yield Server(url, proc, data_dir, gradio_dir, base_model, log_path, queue_max_size)


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for children in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                kids = [int(c) for c in children.read_text().split()]
                out += kids
                todo += kids
    return out


def _status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def peak_rss_mb(pid: int) -> float:
    """VmHWM of the server plus its live children (children that already exited are not counted)."""
    return sum(_status_kb(p, "VmHWM") for p in [pid, *_descendants(pid)]) / 1024


def rss_mb(pid: int) -> float:
    return sum(_status_kb(p, "VmRSS") for p in [pid, *_descendants(pid)]) / 1024


# --------------------------------------------------------------------------- one session

@dataclass
class QueueStats:
    in_queue_updates: int = 0
    max_queue_size: int = 0
    max_rank: int = -1  # 0-based position; -1: never seen waiting

    def merge(self, other: "QueueStats") -> None:
        self.in_queue_updates += other.in_queue_updates
        self.max_queue_size = max(self.max_queue_size, other.max_queue_size)
        self.max_rank = max(self.max_rank, other.max_rank)


@dataclass
class SessionOutcome:
    index: int
    person: str
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # isolation
    checks: int = 0
    paths: set[str] = field(default_factory=set)
    hashes: set[str] = field(default_factory=set)
    result_ids: list[str] = field(default_factory=list)
    identity: dict[str, float | None] = field(default_factory=dict)
    queue: QueueStats = field(default_factory=QueueStats)


class IsolationError(AssertionError):
    pass


def session_folder(data_dir: Path, session_hash: str) -> Path:
    """Where pipeline.session.Session keeps this browser session's data (a hash of Gradio's session id)."""
    return data_dir / "sessions" / hashlib.sha256(session_hash.encode()).hexdigest()[:24]


def _file_datas(obj: Any) -> Iterator[dict]:
    """Every FileData dict in an output (gradio_client with download_files=False)."""
    if isinstance(obj, dict):
        if isinstance(obj.get("path"), str) and ("url" in obj or "meta" in obj):
            yield obj
        else:
            for v in obj.values():
                yield from _file_datas(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _file_datas(v)


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


class SessionRunner:
    def __init__(self, server: Server, cset: CaptureSet, *, train_steps: int, review: bool,
                 gen_params: list[dict]):
        from gradio_client import Client

        self.server, self.cset, self.train_steps = server, cset, train_steps
        self.review, self.gen_params = review, gen_params
        self.client = Client(server.url, verbose=False, download_files=False)
        self.folder = session_folder(server.data_dir, self.client.session_hash)
        self.out = SessionOutcome(cset.index, cset.person)
        self.files: dict[str, bytes] = {}  # server path -> content, for the checks of this session

    # -- plumbing
    def _check(self, ok: bool, message: str) -> None:
        self.out.checks += 1
        if not ok:
            raise IsolationError(f"session {self.cset.index} ({self.cset.person}): {message}")

    def call(self, step: str, *args: Any, api_name: str) -> Any:
        from gradio_client.utils import Status

        t0 = time.perf_counter()
        job = self.client.submit(*args, api_name=api_name)
        while not job.done():
            st = job.status()
            if st.code == Status.IN_QUEUE:
                q = self.out.queue
                q.in_queue_updates += 1
                q.max_queue_size = max(q.max_queue_size, st.queue_size or 0)
                q.max_rank = max(q.max_rank, st.rank if st.rank is not None else -1)
            time.sleep(POLL_S)
        result = job.result()
        self.out.timings[step] = self.out.timings.get(step, 0.0) + time.perf_counter() - t0
        self._collect(result)
        return result

    def _collect(self, result: Any) -> None:
        """Fetch every returned file like a browser would; check where it lives on the server."""
        for fd in _file_datas(result):
            path = fd["path"]
            where = Path(path).resolve()
            inside = any(where.is_relative_to(d.resolve()) for d in (self.server.gradio_dir, self.folder))
            self._check(inside, f"returned file outside the Gradio cache and its own folder: {path}")
            data = _fetch(fd["url"]) if fd.get("url") else Path(path).read_bytes()
            self.files[path] = data
            self.out.paths.add(path)
            self.out.hashes.add(hashlib.sha256(data).hexdigest())

    # -- the steps
    def run(self) -> SessionOutcome:
        try:
            self._capture()
            if self.train_steps:
                self._train()
            self._generate()
            if self.review:
                self._review()
            self._export()
        except IsolationError as exc:
            self.out.failures.append(str(exc))
        except Exception as exc:  # an app error or a transport failure: counted, not fatal to the run
            self.out.errors.append(f"session {self.cset.index}: {type(exc).__name__}: {exc}")
        finally:
            try:
                self._delete()
            except IsolationError as exc:
                self.out.failures.append(str(exc))
            except Exception as exc:
                self.out.errors.append(f"session {self.cset.index} delete: {type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                self.client.close()
        return self.out

    def _capture(self) -> None:
        from gradio_client import handle_file

        own = self.cset.names
        gallery, _summary, table, selection, report = self.call(
            "check_capture", [handle_file(str(p)) for p in self.cset.photos], api_name="/check_capture")
        self._check(len(gallery) == len(own), f"capture gallery has {len(gallery)} items for {len(own)} uploads")
        listed = [row[0] for row in table["data"]]
        self._check(set(listed) == own, f"capture table lists {listed}")
        chosen = list(selection["value"])
        self._check(bool(chosen) and set(chosen) <= own, f"selection {chosen} is not within its own uploads")
        report_json = json.loads(self.files[report["path"]])
        self._check({p["file"] for p in report_json["photos"]} == own,
                    f"capture.json lists {[p['file'] for p in report_json['photos']]}")
        on_disk = {p.name for p in (self.folder / "photos").iterdir()} if (self.folder / "photos").is_dir() else set()
        self._check(on_disk == own, f"its session folder holds {sorted(on_disk)}")
        confirmed = self.call("confirm_selection", chosen, api_name="/confirm_selection")
        self._check(f"{len(chosen)} photos confirmed" in confirmed, f"confirm said {confirmed!r}")

    def _train(self) -> None:
        status, _loss = self.call("train", str(self.server.base_model), self.train_steps, 4, api_name="/train")
        self._check("Training finished" in status, f"train said {status!r}")
        self._check((self.folder / "lora" / "pytorch_lora_weights.safetensors").is_file(),
                    "no LoRA in its own session folder after training")

    def _generate(self) -> None:
        values = {"Style preset": "linkedin", "Seed": self.cset.seed, "Images": 1, "Extra prompt words (optional)": "",
                  "Negative constraints (one per line; edit freely)": "no plastic skin",
                  "LoRA from the Hub (blank: the one trained here)": "",
                  "Prompt (edit freely: an edited prompt is sent exactly as written)": "",
                  "Base model (Hub id or local diffusers folder)": str(self.server.base_model), **GEN_FIELDS}
        args = [values.get(p["label"], p.get("parameter_default")) for p in self.gen_params]
        gallery = self.call("generate", *args, api_name="/generate")
        self._check(len(gallery) == 1, f"generate returned {len(gallery)} images for 1")
        item = gallery[0]
        self._check(f"seed {self.cset.seed}" in (item.get("caption") or ""), f"caption {item.get('caption')!r}")
        meta = json.loads(Image.open(io.BytesIO(self.files[item["image"]["path"]])).text["headshot-studio"])
        self._check(meta["spec"]["seed"] == self.cset.seed, f"image made with seed {meta['spec']['seed']}")
        lora = meta["spec"].get("lora")
        if self.train_steps:  # the result used this session's own LoRA, not another's
            self._check(bool(lora) and Path(lora).resolve() == (self.folder / "lora").resolve(), f"LoRA {lora!r}")
        self.out.result_ids = [Path(item["image"]["path"]).stem]
        on_disk = {p.stem for p in (self.folder / "results").glob("*.png")}
        self._check(on_disk == set(self.out.result_ids), f"its results folder holds {sorted(on_disk)}")

    def _review(self) -> None:
        from gradio_client import handle_file

        _gallery, table = self.call("review", "", False, False, None, api_name="/review")
        ids = [row[0] for row in table["data"]]
        self._check(set(ids) == set(self.out.result_ids), f"review of its results lists {ids}")
        probes = [self.cset.own_probe, self.cset.other_probe]
        gallery, table = self.call("review_probe", "", False, False, [handle_file(str(p)) for p in probes],
                                   api_name="/review")
        rows = {row[0]: row for row in table["data"]}
        own_row, other_row = rows.get(f"1-{probes[0].stem}"), rows.get(f"2-{probes[1].stem}")
        self._check(own_row is not None and other_row is not None, f"probe review rows {sorted(rows)}")
        scores = [re.search(r"identity (-?[0-9.]+)", g.get("caption") or "") for g in gallery]
        self.out.identity = {"own": float(scores[0][1]) if scores[0] else None,
                             "stranger": float(scores[1][1]) if scores[1] else None}
        # The reference is this session's capture set: its own person scores high, a stranger is a mismatch.
        # (The own probe's verdict may still warn or fail for other reasons, e.g. a second face in the photo
        # or a near-copy of a capture photo, so the score is what is checked.)
        own = self.out.identity["own"]
        self._check(own is not None and own >= OWN_MIN_SIMILARITY and "identity_mismatch" not in own_row[2],
                    f"own held-out photo: identity {own} / {own_row[2]!r}")
        self._check(other_row[2].startswith("fail") and "identity_mismatch" in other_row[2],
                    f"stranger {self.cset.other_person}: identity {other_row[2]!r}")

    def _export(self) -> None:
        first, last = f"Session{self.cset.index:02d}", self.cset.person.upper()
        bundle, manifest = self.call("export", EXPORT_SPECS, first, last, False, None, api_name="/export")
        self._check(manifest["person"] == {"first": first, "last": last}, f"manifest person {manifest['person']}")
        sources = {f["source_result"] for f in manifest["files"]}
        self._check(sources == set(self.out.result_ids), f"manifest sources {sorted(sources)} vs {self.out.result_ids}")
        with zipfile.ZipFile(io.BytesIO(self.files[bundle["path"]])) as zf:
            zipped = json.loads(zf.read("manifest.json"))
        self._check(zipped == manifest, "the zip's manifest.json differs from the one shown")

    def _delete(self) -> None:
        existed = self.folder.exists()
        self.call("delete", None, None, api_name="/delete_photos")
        self._check(existed, "its session folder never existed")
        self._check(not self.folder.exists(), f"its session folder survived delete: {self.folder}")


# --------------------------------------------------------------------------- the run

def generate_params(url: str) -> list[dict]:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    try:
        return client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/generate"]["parameters"]
    finally:
        client.close()


def cross_session_failures(outcomes: list[SessionOutcome]) -> list[str]:
    """A server path or content hash that two sessions both received (every input is unique)."""
    failures = []
    for attr in ("paths", "hashes"):
        owners: dict[str, list[int]] = {}
        for o in outcomes:
            for key in getattr(o, attr):
                owners.setdefault(key, []).append(o.index)
        failures += [f"{attr[:-1] if attr == 'paths' else 'sha256'} {k} seen by sessions {v}"
                     for k, v in owners.items() if len(v) > 1]
    return failures


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: with few samples it is an observed latency)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def queue_probe(server: Server, photos: list[Path], extra: int = 2) -> dict:
    """Fill the queue behind a long training run and count the refusals.

    Session A starts a long training run (the one GPU slot is busy); session B submits max_size + ``extra``
    trains that must wait behind it. Expected: exactly max_size wait (with their positions reported)
    and ``extra`` are refused at once with "queue full". The waiting ones are then cancelled (removed
    from the server's queue) and A's training is cancelled.
    """
    from gradio_client import Client, handle_file
    from gradio_client.utils import QueueError, Status

    a = Client(server.url, verbose=False, download_files=False)
    b = Client(server.url, verbose=False, download_files=False, max_workers=server.queue_max_size + extra + 8)
    t0 = time.perf_counter()
    try:
        _g, _s, _t, selection, _r = a.predict([handle_file(str(p)) for p in photos], api_name="/check_capture")
        a.predict(selection["value"], api_name="/confirm_selection")
        blocker = a.submit(str(server.base_model), 4000, 4, api_name="/train")  # the most the app allows
        deadline = time.time() + 60
        while blocker.status().code != Status.PROCESSING and time.time() < deadline:
            time.sleep(POLL_S)
        n = server.queue_max_size + extra
        jobs = [b.submit(str(server.base_model), 2, 4, api_name="/train") for _ in range(n)]
        ranks: list[int] = []
        sizes: list[int] = []
        settle = time.time() + 60  # until each job is either refused or waiting in the queue
        while True:
            states = [j.status() for j in jobs]
            ranks += [s.rank for s in states if s.code == Status.IN_QUEUE and s.rank is not None]
            sizes += [s.queue_size for s in states if s.code == Status.IN_QUEUE and s.queue_size is not None]
            if all(j.done() or s.code == Status.IN_QUEUE for j, s in zip(jobs, states)) or time.time() > settle:
                break
            time.sleep(0.2)
        refused = [j for j in jobs if j.done() and isinstance(j.exception(), QueueError)]
        waiting = [j for j, s in zip(jobs, states) if not j.done() and s.code == Status.IN_QUEUE]
        still_training = not blocker.done()
        for j in waiting:  # removes it from the server's queue
            j.cancel()
        # Cancel skips the queue in the browser (queue=False); gradio_client may still route it through
        # the queue, where a full queue refuses it: retry until it drains.
        stop_by = time.time() + 60
        while True:
            try:
                a.predict(api_name="/cancel_training")
                break
            except QueueError:
                if time.time() > stop_by:
                    raise
                time.sleep(0.5)
        blocker_status = blocker.result(timeout=120)[0]
        a.predict(None, None, api_name="/delete_photos")
    finally:
        a.close()
        b.close()
    ok = still_training and len(refused) == extra and len(waiting) == server.queue_max_size
    return {"max_size": server.queue_max_size, "submitted": n, "queue_full": len(refused), "waited": len(waiting),
            "blocker_busy_throughout": still_training, "blocker": blocker_status,
            "max_rank_seen": max(ranks) if ranks else None, "max_queue_size_seen": max(sizes) if sizes else None,
            "seconds": r(time.perf_counter() - t0), "ok": ok}


def run_load(server: Server, sets: list[CaptureSet], *, train_steps: int = 2, review: bool = True,
             probe: bool = True, memory_ceiling_mb: float = DEFAULT_CEILING_MB) -> dict:
    """Run every capture set as its own concurrent session; return the JSON report (``ok`` says pass/fail)."""
    idle_rss = rss_mb(server.proc.pid)
    params = generate_params(server.url)
    runners = [SessionRunner(server, s, train_steps=train_steps, review=review, gen_params=params) for s in sets]
    outcomes: list[SessionOutcome | None] = [None] * len(runners)
    start = threading.Barrier(len(runners))

    def work(i: int) -> None:
        start.wait()  # everyone arrives at once: the worst case for the queue
        outcomes[i] = runners[i].run()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,), name=f"session-{i}") for i in range(len(runners))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    done = [o for o in outcomes if o is not None]
    failures = [f for o in done for f in o.failures] + cross_session_failures(done)
    errors = [e for o in done for e in o.errors]
    errors += [f"session {i}: no outcome" for i, o in enumerate(outcomes) if o is None]
    sessions_dir = server.data_dir / "sessions"
    leftover = sorted(p.name for p in sessions_dir.iterdir()) if sessions_dir.exists() else []
    if leftover:
        failures.append(f"session folders left after every session deleted its data: {leftover}")
    queue = QueueStats()
    for o in done:
        queue.merge(o.queue)
    steps = {}
    for step in STEPS:
        vals = [o.timings[step] for o in done if step in o.timings]
        if vals:
            steps[step] = {"n": len(vals), "p50_s": r(percentile(vals, 50)), "p95_s": r(percentile(vals, 95)),
                           "max_s": r(max(vals))}
    probe_report = queue_probe(server, sets[0].photos) if probe else None
    peak = peak_rss_mb(server.proc.pid)
    report = {
        "clients": len(sets),
        "people": [s.person for s in sets],
        "train_steps": train_steps,
        "wall_s": r(wall),
        "steps": steps,
        "errors": len(errors),
        "error_messages": errors[:20],
        "isolation": {"checks": sum(o.checks for o in done), "failures": failures[:50],
                      "distinct_paths": len({p for o in done for p in o.paths}),
                      "identity_scores": {o.index: o.identity for o in done if o.identity}},
        "queue": {"max_size": server.queue_max_size, "max_observed_queue_size": queue.max_queue_size,
                  "max_observed_rank": queue.max_rank, "in_queue_updates": queue.in_queue_updates,
                  "probe": probe_report},
        "memory": {"server_idle_rss_mb": r(idle_rss), "server_peak_rss_mb": r(peak),
                   "ceiling_mb": memory_ceiling_mb, "within_ceiling": peak <= memory_ceiling_mb},
    }
    report["ok"] = (not errors and not failures and peak <= memory_ceiling_mb
                    and (probe_report is None or probe_report["ok"]))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help=f"concurrent sessions (1-{MAX_CLIENTS})")
    parser.add_argument("--train-steps", type=int, default=2, help="LoRA steps per session (0: skip training)")
    parser.add_argument("--no-review", action="store_true", help="skip the review steps")
    parser.add_argument("--no-probe", action="store_true", help="skip the queue-full probe")
    parser.add_argument("--queue-max-size", type=int, default=64, help="passed to the app as HEADSHOT_QUEUE_MAX_SIZE")
    parser.add_argument("--memory-ceiling-mb", type=float, default=DEFAULT_CEILING_MB)
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be 1-{MAX_CLIENTS}")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the report
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(prefix="load_bench_") as tmp:
        work = Path(tmp)
        sets = make_capture_sets(args.clients, work / "uploads")
        t0 = time.perf_counter()
        with start_server(work / "server", queue_max_size=args.queue_max_size) as server:
            startup = time.perf_counter() - t0
            log.info("app up in %.1f s at %s; %d sessions start", startup, server.url, args.clients)
            report = run_load(server, sets, train_steps=args.train_steps, review=not args.no_review,
                              probe=not args.no_probe, memory_ceiling_mb=args.memory_ceiling_mb)
    out = {"benchmark": "load", "machine": machine(), "cpu_count": os.cpu_count(), "loadavg": loadavg(),
           "versions": versions("gradio", "gradio_client", "torch", "diffusers"),
           "server_startup_s": r(startup), **report}
    print(json.dumps(out, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
