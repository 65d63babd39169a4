"""Fairness check: do the capture gate and the identity score treat every person alike?

For photos labelled by person, per person:

- the capture gate's **false-reject rate**: the share of their photos the single-photo checks
  reject for a reason about the *person's* photo (face size, sharpness, exposure, pose, filters...).
  Every labelled photo is a genuine photo of that person, so such a rejection is a cost that person
  pays. Rejections for the scene (another person in the frame: ``multiple_faces``) are counted
  apart, since they are right whoever the subject is;
- **identity scores**: cosine similarity of each photo to the centroid of the person's *other*
  photos (leave one out, as the review step scores a result against a capture set), the share that
  would pass the review's identity threshold, and the best score any other person's photo reaches
  against this person's centroid (impostor).

The spread across people (max - min) of each figure is the headline. Persons are only ids: no
demographic attribute is inferred from faces. What a small set can and cannot show is the caller's
to say (the README does).
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .capture import DEFAULT_THRESHOLDS, check_photo
from .faces import FaceAnalyzer
from .intake import open_photo
from .review import THRESHOLDS

SCENE_REASONS = frozenset({"multiple_faces"})  # about the scene, not the subject


@dataclass
class PersonFigures:
    person: str
    photos: int
    rejected: int  # for any reason
    rejected_for_scene: int  # only for another person in the frame
    warned: int
    false_reject_rate: float  # rejected for a reason about the subject's photo
    reject_reasons: dict[str, int] = field(default_factory=dict)
    identity_scores: list[float] = field(default_factory=list)  # leave-one-out, to the centroid
    identity_median: float | None = None
    identity_min: float | None = None
    identity_pass_rate: float | None = None  # share >= the review's identity_pass
    impostor_max: float | None = None  # best other-person photo against this person's centroid


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-12)


def _embedding(path: Path, analyzer: FaceAnalyzer) -> np.ndarray | None:
    face = analyzer.analyze(open_photo(path).rgb).primary
    return None if face is None or face.embedding is None or not len(face.embedding) else _unit(face.embedding)


def fairness_report(photos_by_person: Mapping[str, Sequence[str | Path]], analyzer: FaceAnalyzer | None = None,
                    workers: int = 2) -> dict:
    if analyzer is None:
        from .capture import default_analyzer
        analyzer = default_analyzer()
    people = {p: [Path(f) for f in files] for p, files in photos_by_person.items()}
    flat = [(p, f) for p, files in people.items() for f in files]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        checks = list(pool.map(lambda pf: check_photo(pf[1], pf[1].name, analyzer, DEFAULT_THRESHOLDS), flat))
        # The gate's own analysis carries the embedding; analyse again only where it stopped early.
        embs = list(pool.map(lambda pc: _unit(pc[1].face.embedding) if pc[1].face is not None
                             and pc[1].face.embedding is not None and len(pc[1].face.embedding)
                             else _embedding(pc[0][1], analyzer), zip(flat, checks)))
    by_person: dict[str, list[np.ndarray]] = {p: [] for p in people}
    for (p, _), e in zip(flat, embs):
        if e is not None:
            by_person[p].append(e)

    figures = []
    for person, files in people.items():
        mine = [c for (p, _), c in zip(flat, checks) if p == person]
        rejected = [c for c in mine if c.verdict == "reject"]
        reasons = Counter(r.code for c in rejected for r in c.reasons if r.severity == "reject")
        personal = [c for c in rejected if {r.code for r in c.reasons if r.severity == "reject"} - SCENE_REASONS]
        fig = PersonFigures(person, len(files), len(rejected), len(rejected) - len(personal),
                            sum(c.verdict == "warn" for c in mine), round(len(personal) / max(1, len(files)), 4),
                            dict(reasons))
        vecs = by_person[person]
        if len(vecs) >= 2:
            scores = []
            for i, v in enumerate(vecs):
                centroid = _unit(np.mean([w for j, w in enumerate(vecs) if j != i], axis=0))
                scores.append(float(v @ centroid))
            centroid = _unit(np.mean(vecs, axis=0))
            others = [float(w @ centroid) for q, ws in by_person.items() if q != person for w in ws]
            fig.identity_scores = [round(s, 4) for s in scores]
            fig.identity_median = round(float(np.median(scores)), 4)
            fig.identity_min = round(min(scores), 4)
            fig.identity_pass_rate = round(sum(s >= THRESHOLDS.identity_pass for s in scores) / len(scores), 4)
            fig.impostor_max = round(max(others), 4) if others else None
        figures.append(fig)

    def spread(attr: str) -> dict | None:
        vals = [getattr(f, attr) for f in figures if getattr(f, attr) is not None]
        if not vals:
            return None
        return {"min": min(vals), "max": max(vals), "spread": round(max(vals) - min(vals), 4)}

    return {
        "people": len(figures), "photos": len(flat),
        "thresholds": {"identity_pass": THRESHOLDS.identity_pass, "identity_fail": THRESHOLDS.identity_fail},
        "per_person": [asdict(f) for f in figures],
        "spread": {k: spread(k) for k in ("false_reject_rate", "identity_median", "identity_min",
                                          "identity_pass_rate", "impostor_max")},
    }
