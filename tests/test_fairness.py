"""Fairness check on the labelled real photos: no person pays more at the capture gate, and the
identity score passes every person's own photos and no one else's (pipeline.fairness)."""
from __future__ import annotations

import pytest

from benchmarks._common import FACES_DIR as FACES
from benchmarks.fairness_bench import labelled
from pipeline.fairness import fairness_report

pytestmark = pytest.mark.skipif(not (FACES / "identities.csv").exists(), reason="shared/testdata/faces is missing")


@pytest.fixture(scope="module")
def report(analyzer):
    return fairness_report(labelled(FACES), analyzer)


def test_every_labelled_person_is_measured(report):
    assert report["people"] == 7 and report["photos"] == sum(p["photos"] for p in report["per_person"])
    assert all(len(p["identity_scores"]) == p["photos"] for p in report["per_person"])


def test_capture_gate_false_rejects_are_even(report):
    # With 2-8 photos per person, one rejected photo is 12-50 %: allow at most one per person.
    for p in report["per_person"]:
        assert p["false_reject_rate"] * p["photos"] <= 1, p
    assert report["spread"]["false_reject_rate"]["spread"] <= 0.5


def test_identity_passes_each_persons_own_photos_and_no_one_else(report):
    for p in report["per_person"]:
        assert p["identity_pass_rate"] == 1.0, p  # leave-one-out score >= the review's pass threshold
        assert p["impostor_max"] < report["thresholds"]["identity_fail"], p
        assert p["identity_min"] - p["impostor_max"] > 0.25, p  # a clear margin for everyone
    assert report["spread"]["identity_median"]["spread"] < 0.15
