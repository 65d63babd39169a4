"""Team consistency: how alike the standardised portraits are, per member and for the whole team."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from .names import display_name
from .report import DEFAULT_THRESHOLDS, FAIL, OK, WARN, _RANK, PortraitResult, StandardizeThresholds


def _spread(values: list[float], digits: int = 4) -> dict[str, Any] | None:
    if not values:
        return None
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), digits),
        "median": round(statistics.median(values), digits),
        "std": round(statistics.pstdev(values), digits) if len(values) > 1 else 0.0,
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "range": round(max(values) - min(values), digits),
    }


@dataclass
class TeamReport:
    guide: str
    background: str
    size: tuple[int, int]
    photos: list[PortraitResult]
    team: dict = field(default_factory=dict)
    outliers: list[dict] = field(default_factory=list)
    files: dict = field(default_factory=dict)  # report.json, contact_sheet.jpg, export zip (paths as strings)

    @property
    def verdict(self) -> str:
        return max((p.verdict for p in self.photos), key=_RANK.__getitem__, default=OK)

    @property
    def exit_code(self) -> int:
        """0: every portrait ok; 1: some warn or fail (the CLI contract)."""
        return 0 if self.verdict == OK else 1

    def to_dict(self) -> dict:
        return {"guide": self.guide, "background": self.background, "size": list(self.size),
                "photos": [p.to_dict() for p in self.photos], "team": dict(self.team),
                "outliers": list(self.outliers), "files": dict(self.files)}


def _values(photos: list[PortraitResult], attr: str) -> list[float]:
    return [float(getattr(p.metrics, attr)) for p in photos if getattr(p.metrics, attr) is not None]


def team_report(photos: list[PortraitResult], guide: str, background: str, size: tuple[int, int],
                t: StandardizeThresholds = DEFAULT_THRESHOLDS) -> TeamReport:
    """Spreads over the usable portraits, each member's deviation from the team, and named outliers."""
    usable = [p for p in photos if p.verdict != FAIL and p.metrics.eye_line is not None]
    counts = {v: sum(p.verdict == v for p in photos) for v in (OK, WARN, FAIL)}
    team: dict[str, Any] = {
        "members": len(photos), **counts,
        "verdict": max((p.verdict for p in photos), key=_RANK.__getitem__, default=OK),
        "eye_line": _spread(_values(usable, "eye_line")),
        "head_height": _spread(_values(usable, "head_height")),
        "background_delta_e": _spread(_values(usable, "background_delta_e"), 3),
        "face_cct_before": _spread(_values(usable, "face_cct_before"), 1),
        "face_cct": _spread(_values(usable, "face_cct_after"), 1),
        "face_l_before": _spread(_values(usable, "face_l_before"), 2),
        "face_l": _spread(_values(usable, "face_l_after"), 2),
        "upscale_max": max(_values(usable, "upscale"), default=None),
    }
    outliers: list[dict] = []
    for p in photos:
        if p.verdict == FAIL:
            worst = next(r for r in p.reasons if r.severity == FAIL)
            outliers.append({"member_id": p.member_id, "name": display_name(p.person), "code": worst.code,
                             "reason": worst.message})
    med = {k: (team[k] or {}).get("median") for k in ("eye_line", "head_height", "face_cct", "face_l")}
    for p in usable:
        m = p.metrics
        dev = {
            "eye_line": None if med["eye_line"] is None else m.eye_line - med["eye_line"],
            "head_height": None if m.head_height is None or not med["head_height"] else m.head_height / med["head_height"] - 1,
            "face_cct": None if m.face_cct_after is None or med["face_cct"] is None else m.face_cct_after - med["face_cct"],
            "face_l": None if m.face_l_after is None or med["face_l"] is None else m.face_l_after - med["face_l"],
        }
        p.consistency = {f"{k}_dev": None if v is None else round(v, 4) for k, v in dev.items()}
        checks = (
            ("eye_line", t.eye_line_dev, "eye_line_outlier", "The eyes sit {v:+.1%} of the height off the team's eye line."),
            ("head_height", t.head_height_dev, "head_size_outlier", "The head is {v:+.0%} off the team's head size."),
            ("face_cct", t.cct_dev_k, "colour_outlier", "The face colour temperature is {v:+.0f} K off the team."),
            ("face_l", t.l_dev, "exposure_outlier", "The face brightness is {v:+.1f} L* off the team."),
        )
        for key, limit, code, text in checks:
            v = dev[key]
            if v is not None and abs(v) > limit:
                outliers.append({"member_id": p.member_id, "name": display_name(p.person), "code": code,
                                 "reason": text.format(v=v), "value": round(v, 4), "threshold": limit})
        if m.background_delta_e is not None and m.background_delta_e > t.background_delta_e_warn:
            outliers.append({"member_id": p.member_id, "name": display_name(p.person), "code": "background_mismatch",
                             "reason": f"The background is ΔE {m.background_delta_e:.1f} from the approved one.",
                             "value": round(m.background_delta_e, 3), "threshold": t.background_delta_e_warn})
    team["outliers"] = len({o["member_id"] for o in outliers})
    return TeamReport(guide, background, tuple(size), photos, team, outliers)
