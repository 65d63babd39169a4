"""Many users at once: concurrent sessions through the running app never see each other's data, and an
overloaded queue refuses new work with "queue full" instead of growing without bound.

A smaller run of benchmarks/load_bench.py (4 sessions, its own server with a queue of 8) using the same
helpers, so the benchmark's checks are themselves under test.
"""
from __future__ import annotations

import json

from benchmarks.load_bench import (STEPS, SessionOutcome, cross_session_failures, make_capture_sets, run_load,
                                   start_server)
from tests.tiny_fixtures import tiny_sdxl_dir

CLIENTS = 4
QUEUE_MAX_SIZE = 8  # small, so the overload probe needs only 10 submissions
MEMORY_CEILING_MB = 5120  # generous: 8 sessions measured about 2.1 GB peak on the 2-core VM


def test_cross_session_check_flags_a_shared_file():
    """The cross-session check is not vacuous: one path or content hash in two sessions is reported."""
    a, b = SessionOutcome(0, "p01"), SessionOutcome(1, "p02")
    a.paths, a.hashes = {"/cache/1/x.png"}, {"h1"}
    b.paths, b.hashes = {"/cache/2/y.png"}, {"h2"}
    assert cross_session_failures([a, b]) == []
    b.paths.add("/cache/1/x.png")
    b.hashes.add("h1")
    assert cross_session_failures([a, b]) == ["path /cache/1/x.png seen by sessions [0, 1]",
                                              "sha256 h1 seen by sessions [0, 1]"]


def test_capture_sets_are_distinct_people_and_bytes(tmp_path):
    sets = make_capture_sets(9, tmp_path)  # 9 > 7 people: sessions 0 and 7 share p01 with other photos
    assert [s.person for s in sets[:7]] == [f"p{i:02d}" for i in range(1, 8)] and sets[7].person == "p01"
    assert all(3 <= len(s.photos) <= 4 for s in sets)
    assert all(s.other_person != s.person for s in sets)
    assert {p.name.split("_", 1)[1] for p in sets[0].photos} != {p.name.split("_", 1)[1] for p in sets[7].photos}


def test_concurrent_sessions_stay_isolated(tmp_path_factory):
    work = tmp_path_factory.mktemp("load")
    sets = make_capture_sets(CLIENTS, work / "uploads")
    with start_server(work / "server", base_model=tiny_sdxl_dir(tmp_path_factory),
                      queue_max_size=QUEUE_MAX_SIZE) as server:
        report = run_load(server, sets, train_steps=2, review=True, probe=True, memory_ceiling_mb=MEMORY_CEILING_MB)
    summary = json.dumps(report, indent=1)
    assert report["errors"] == 0, summary
    assert report["isolation"]["failures"] == [], summary
    # Every session ran every step (the checks counted are the ones that ran, so a short count means skipped work).
    assert all(report["steps"][step]["n"] == CLIENTS for step in STEPS), summary
    assert report["isolation"]["checks"] >= CLIENTS * 25, summary
    # Four sessions arriving at once against 2 CPU slots and 1 GPU slot: some had to wait, and were told where.
    assert report["queue"]["max_observed_queue_size"] >= 1 and report["queue"]["in_queue_updates"] > 0, summary
    probe = report["queue"]["probe"]
    assert probe["blocker_busy_throughout"], summary
    assert (probe["waited"], probe["queue_full"]) == (QUEUE_MAX_SIZE, 2), summary
    assert probe["max_queue_size_seen"] == QUEUE_MAX_SIZE and probe["max_rank_seen"] == QUEUE_MAX_SIZE - 1, summary
    assert report["memory"]["within_ceiling"], summary
    assert report["ok"], summary
