"""No-generation team standardisation: every member photo gets the style guide's crop, an approved
background and one colour grade, so a team page looks like one session.

Importable without Gradio. The pieces, one concern per module:

- ``crop``: landmark placement (same eye line and head size), canvas extension, working size;
- ``background``: approved backgrounds, refined matte, decontaminated edges, compositing;
- ``colour``: face-skin white balance / exposure towards the guide, saturation, bounded;
- ``portrait``: one photo -> :class:`PortraitResult` (never raises for a bad photo);
- ``team`` / ``sheet``: consistency report and contact sheet;
- ``batch``: streaming, bounded-memory batches writing masters, ``report.json``, ``contact_sheet.jpg``;
- ``names``: member names from file names.
"""
from __future__ import annotations

from .batch import REPORT_NAME, SHEET_NAME, export_team, save_master, standardize_batch
from .colour import skin_target_cct
from .crop import working_size
from .names import display_name, member_name
from .portrait import member_id_for, standardize_photo
from .report import (DEFAULT_THRESHOLDS, FAIL, MESSAGES, OK, WARN, Measurements, PortraitResult, Reason,
                     StandardizeThresholds)
from .sheet import contact_sheet
from .team import TeamReport, team_report

__all__ = ["DEFAULT_THRESHOLDS", "FAIL", "MESSAGES", "OK", "REPORT_NAME", "SHEET_NAME", "WARN", "Measurements",
           "PortraitResult", "Reason", "StandardizeThresholds", "TeamReport", "contact_sheet", "display_name",
           "export_team", "member_id_for", "member_name", "save_master", "skin_target_cct", "standardize_batch",
           "standardize_photo", "team_report", "working_size"]
