"""Checks over the whole set (identity, filters, duplicates), then selection and advice."""
from __future__ import annotations

import math
import statistics

import numpy as np

from ..faces import cosine
from ..quality import hamming
from .report import ACCEPT, ADVICE, DEFAULT_THRESHOLDS, POSE_BINS, REJECT, WARN, _RANK, CaptureThresholds, PhotoCheck, Reason, SetCheck


def check_set(photos: list[PhotoCheck], t: CaptureThresholds = DEFAULT_THRESHOLDS) -> SetCheck:
    """Set-relative checks (identity, filters, duplicates), then selection and advice.

    Adds per-photo reasons in place, so call it once, after every :func:`check_photo`.
    """
    faced = [p for p in photos if p.face is not None and p.verdict != REJECT]
    set_reasons: list[Reason] = []
    _check_identity(faced, set_reasons, t)
    _check_texture(faced, t)
    _check_duplicates([p for p in faced if p.verdict != REJECT], t)
    usable = [p for p in photos if p.usable]
    for p in usable:
        p.score = _quality_score(p, t)
    selected = _select(usable, t)
    for rank, p in enumerate(selected, 1):
        p.selected, p.rank = True, rank
    coverage = {b: sum(1 for p in usable if p.pose == b) for b in POSE_BINS}

    if len(usable) < t.min_photos:
        set_reasons.append(Reason("too_few_photos", REJECT,
                                  f"Only {len(usable)} usable photos; at least {t.min_photos} are needed and "
                                  f"{t.recommended_photos}-20 are best.", len(usable), t.min_photos))
    elif len(usable) < t.recommended_photos:
        set_reasons.append(Reason("too_few_photos", WARN,
                                  f"{len(usable)} usable photos; {t.recommended_photos}-20 give a more faithful likeness.",
                                  len(usable), t.recommended_photos))
    covered = sum(1 for n in coverage.values() if n)
    if usable and covered < t.min_pose_bins:
        set_reasons.append(Reason("low_pose_variety", WARN,
                                  f"{ADVICE['low_pose_variety']} Only {covered} of {len(POSE_BINS)} poses are covered.",
                                  covered, t.min_pose_bins))
    verdict = max((r.severity for r in set_reasons), key=_RANK.__getitem__, default=ACCEPT)
    return SetCheck(
        verdict=verdict, reasons=set_reasons, selected=[p.file for p in selected], pose_coverage=coverage,
        advice=_advice(photos, usable, coverage, t), usable=len(usable), total=len(photos),
    )


def _check_identity(faced: list[PhotoCheck], set_reasons: list[Reason], t: CaptureThresholds) -> None:
    """Cluster by single linkage at ``identity_link``; the largest cluster is the subject."""
    n = len(faced)
    if n < 2:
        return
    emb = np.stack([p.face.embedding for p in faced])
    sim = emb @ emb.T
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if sim[i, j] >= t.identity_link:
                parent[find(i)] = find(j)
    clusters: dict[int, list[int]] = {}
    for i in range(n):
        clusters.setdefault(find(i), []).append(i)
    ordered = sorted(clusters.values(), key=len, reverse=True)
    main = ordered[0]
    # A second person in comparable numbers means the set itself is mixed, not one stray photo.
    if len(ordered) > 1 and len(ordered[1]) >= max(2, t.mixed_share * len(main)):
        set_reasons.append(Reason("mixed_identities", REJECT,
                                  f"{ADVICE['mixed_identities']} Upload photos of one person only.",
                                  len(ordered[1]), None))
    members = set(main)
    for i, p in enumerate(faced):
        others = [j for j in main if j != i]
        mean_sim = float(np.mean(sim[i, others])) if others else 1.0
        p.metrics["identity_similarity"] = round(mean_sim, 3)
        if i not in members:
            p.add("identity_outlier", REJECT, mean_sim, t.identity_link,
                  f"Its similarity to the rest of the set is {mean_sim:.2f}.")
        elif len(main) > 2 and mean_sim < t.identity_weak:
            p.add("identity_outlier", WARN, mean_sim, t.identity_weak,
                  "It only loosely matches the rest of the set; check that it is you.")


def _check_texture(faced: list[PhotoCheck], t: CaptureThresholds) -> None:
    """Skin texture against the rest of the set: a filtered photo has far less than its siblings."""
    textures = [p.texture for p in faced if p.texture]
    if len(textures) < 3:
        return
    for p in faced:
        if not p.texture or p.has("blurry"):
            continue  # blur already explains missing texture
        others = [p2.texture for p2 in faced if p2 is not p and p2.texture]
        ratio = p.texture / max(statistics.median(others), 1e-6)
        p.metrics["texture_ratio"] = round(ratio, 3)
        if ratio < t.texture_ratio_reject:
            p.add("heavy_filter", REJECT, ratio, t.texture_ratio_reject,
                  f"Its skin detail is {ratio:.0%} of your other photos'.")
        elif ratio < t.texture_ratio_warn:
            p.add("heavy_filter", WARN, ratio, t.texture_ratio_warn,
                  f"Its skin detail is {ratio:.0%} of your other photos'.")


def _check_duplicates(candidates: list[PhotoCheck], t: CaptureThresholds) -> None:
    # Better photos claim their place first; a later near-copy points back to the kept one.
    ordered = sorted(candidates, key=lambda p: -_quality_score(p, t))
    kept: list[PhotoCheck] = []
    for p in ordered:
        twin = next((k for k in kept if k.sha256 == p.sha256 or (
            hamming(k.hash64, p.hash64) <= t.duplicate_hash_bits
            and cosine(k.face.embedding, p.face.embedding) >= t.duplicate_identity)), None)
        if twin is None:
            kept.append(p)
        else:
            p.add("duplicate", WARN, None, None, f"It nearly repeats {twin.file}, which is kept instead.")


def _quality_score(p: PhotoCheck, t: CaptureThresholds) -> float:
    """0-1 score for ranking: sharpness, face size, exposure, frontal-ness, minus warnings."""
    m = p.metrics
    sharp = min(1.0, math.log1p(m.get("sharpness", 0)) / math.log1p(600))
    size = min(1.0, m.get("face_px", 0) / 400)
    exposure = max(0.0, 1 - abs(m.get("luminance", 60) - 62) / 30)
    pose = max(0.0, 1 - abs(m.get("yaw", 0)) / 60)
    warns = sum(1 for r in p.reasons if r.severity == WARN)
    return max(0.0, 0.35 * sharp + 0.25 * size + 0.25 * exposure + 0.15 * pose - 0.15 * warns)


def _select(usable: list[PhotoCheck], t: CaptureThresholds) -> list[PhotoCheck]:
    """Best photos first, but one of each pose before the second of any, up to select_max."""
    ranked = sorted(usable, key=lambda p: -p.score)
    chosen: list[PhotoCheck] = []
    seen_bins: set[str] = set()
    for p in ranked:  # first pass: the best photo of every pose present
        if p.pose not in seen_bins:
            chosen.append(p)
            seen_bins.add(p.pose)
    for p in ranked:
        if len(chosen) >= t.select_max:
            break
        if p not in chosen:
            chosen.append(p)
    return sorted(chosen[: t.select_max], key=lambda p: -p.score)


def _advice(photos: list[PhotoCheck], usable: list[PhotoCheck], coverage: dict[str, int], t: CaptureThresholds) -> list[str]:
    advice: list[str] = []
    missing = t.recommended_photos - len(usable)
    if missing > 0:
        advice.append(f"Add at least {missing} more good photo{'s' if missing > 1 else ''}.")
    wording = {"frontal": "facing the camera straight on", "turned_left": "turned slightly to your left",
               "turned_right": "turned slightly to your right", "chin_up": "with your chin slightly up",
               "chin_down": "with your chin slightly down"}
    for pose in POSE_BINS:
        if usable and coverage[pose] == 0:
            advice.append(f"Add two photos {wording[pose]}.")
    counts: dict[str, int] = {}
    for p in photos:
        for r in p.reasons:
            if r.severity == REJECT or r.code in ("duplicate", "heavy_filter"):
                counts[r.code] = counts.get(r.code, 0) + 1
    for code, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        advice.append(f"{n} photo{'s were' if n > 1 else ' was'} set aside for '{code}': {ADVICE[code]}")
    return advice
