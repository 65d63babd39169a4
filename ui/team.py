"""Step 7, Teams: the style guide, members and consent, standardisation, approvals and the library.

Admin actions need an approver of the guide: the signed-in Hugging Face user (on a Space), or the
admin token configured on this server (``HEADSHOT_ADMIN_TOKEN``, acting as ``HEADSHOT_ADMIN_USER``).
Members give consent themselves with their personal code (or signed in as their Hub username).
"""
from __future__ import annotations

import functools
import hmac
import json
import os
import shutil
from pathlib import Path

import gradio as gr

from pipeline.presets import STYLEGUIDES_DIR, PresetError, load_style_guide, parse_style_guide
from pipeline.session import data_root
from pipeline.team import NotFound, TeamError, TeamStore
from pipeline.team.codes import check_code, consent_code
from pipeline.team.workflow import (
    add_people, approved_library, enrol_photos, export_library, notice_text, read_people_csv, restandardize_outdated,
    save_guide_as, standardize_queue, unpack_uploads,
)

from .common import forget_copies, session_of

ON_SPACE = bool(os.environ.get("SPACE_ID"))
MEMBER_HEADERS = ["member", "first", "last", "consent", "uses", "portrait", "consent code"]
QUEUE_HEADERS = ["submission", "member", "status", "guide", "verdict", "reviewer", "reason"]


@functools.cache
def _store() -> TeamStore:
    """One store per server process: a connection pool, no user state (every call names its guide)."""
    return TeamStore(root=data_root())


def _actor(token: str | None, profile: gr.OAuthProfile | None) -> str:
    """Who is acting: the signed-in Hub user, or the local admin when the configured token matches."""
    if profile is not None:
        return profile.username
    expected = os.environ.get("HEADSHOT_ADMIN_TOKEN", "")
    if expected and token and hmac.compare_digest(token.encode(), expected.encode()):
        return os.environ.get("HEADSHOT_ADMIN_USER", "local-admin")
    raise gr.Error("Team admin actions need a sign-in: sign in with Hugging Face, or enter this server's admin token.")


def _admin(guide_name: str, token: str | None, profile: gr.OAuthProfile | None) -> str:
    """The acting user, who must be an approver of the stored guide (it is stored on first use)."""
    actor = _actor(token, profile)
    _ensure_stored(guide_name, actor)
    if not _store().is_approver(guide_name, actor):
        raise gr.Error(f"{actor} is not an approver of the {guide_name} style guide.")
    return actor


def _ensure_stored(guide_name: str, actor: str) -> None:
    """An example guide from presets/styleguides is saved as its version 1 the first time it is used."""
    try:
        _store().current_guide(guide_name)
    except NotFound:
        path = STYLEGUIDES_DIR / f"{guide_name}.yaml"
        if not path.is_file():
            raise gr.Error(f"There is no style guide named {guide_name!r}.")
        try:
            save_guide_as(_store(), path.read_text(encoding="utf-8"), actor)
        except TeamError as exc:
            raise gr.Error(str(exc))


def _guide(guide_name: str):
    """The current guide: the stored version, else the example file."""
    try:
        return _store().current_guide(guide_name).guide
    except NotFound:
        try:
            return load_style_guide(STYLEGUIDES_DIR / f"{guide_name}.yaml")
        except PresetError:
            raise gr.Error(f"There is no style guide named {guide_name!r}.") from None


def restandardise(guide_name: str, token: str, profile: gr.OAuthProfile | None):
    """After a guide edit: queue members whose approved portrait uses an older version."""
    actor = _admin(guide_name, token, profile)
    plan = restandardize_outdated(_store(), guide_name, actor)
    skipped = f" Skipped {len(plan.skipped)} (no consent or inputs already deleted)." if plan.skipped else ""
    return (f"{len(plan.items)} member(s) queued for {plan.guide_key}; press Standardise. Their approved "
            f"portraits stay in use until new ones are approved.{skipped}"), *members_table(guide_name, token, profile)


def _all_uses() -> list[str]:
    """Every use any known guide offers (the API validates against the component's choices)."""
    from pipeline.team.workflow import USE_LABELS

    uses = set(USE_LABELS)
    for name in guide_names():
        uses |= set(_guide(name).governance.uses)
    return sorted(uses)


def guide_names() -> list[str]:
    return sorted(set(_store().guide_names()) | {p.stem for p in STYLEGUIDES_DIR.glob("*.yaml")})


def _guide_text(guide_name: str) -> str:
    try:
        return _store().current_guide(guide_name).yaml
    except NotFound:
        return (STYLEGUIDES_DIR / f"{guide_name}.yaml").read_text(encoding="utf-8")


def show_guide(guide_name: str):
    """Everything that depends on the chosen guide: summary, YAML, backgrounds, consent notice."""
    g = _guide(guide_name)
    history = [f"v{v.version} by {v.created_by}" for v in _store().guide_history(guide_name)] or ["not saved yet"]
    backgrounds = ", ".join(b.label or b.id for b in g.backgrounds)
    summary = (f"**{g.title}** · version {g.version} ({'; '.join(history)})\n\n"
               f"Framing {g.framing.aspect}: eyes at {g.framing.eye_line:.0%} from the top, head "
               f"{g.framing.head_height:.0%} of the height · backgrounds: {backgrounds} · files: "
               f"{', '.join(g.output.export_specs)} · inputs kept {g.governance.retention_days} days · "
               f"approvers: {', '.join(g.governance.approvers)}\n\n**Wardrobe:** {g.wardrobe or '(no guidance)'}")
    bg = gr.Dropdown(choices=[(b.label or b.id, b.id) for b in g.backgrounds], value=g.default_background)
    uses = gr.CheckboxGroup(choices=list(g.governance.uses), value=[])  # never pre-ticked
    return summary, _guide_text(guide_name), bg, uses, notice_text(g)


def save_guide(text: str, upload: str | None, token: str, profile: gr.OAuthProfile | None):
    if upload:
        text = Path(upload).read_text(encoding="utf-8", errors="replace")
    try:
        name = parse_style_guide(text, "your style guide").name
        actor = _actor(token, profile)
        saved = save_guide_as(_store(), text, actor)
    except (PresetError, TeamError) as exc:
        raise gr.Error(str(exc))
    return gr.Dropdown(choices=guide_names(), value=name), f"Saved {saved.key}. Approved portraits keep the version they were made with."


def members_table(guide_name: str, token: str | None = None, profile: gr.OAuthProfile | None = None):
    """Members with consent and portrait status; consent codes only for the guide's admins."""
    store = _store()
    try:
        store.current_guide(guide_name)
    except NotFound:
        return [], gr.Dropdown(choices=[])
    try:
        admin = _admin(guide_name, token, profile) is not None
    except gr.Error:
        admin = False
    rows, pending = [], []
    for m in store.members(guide_name):
        consent = store.current_consent(m.id)
        subs = store.submissions(guide_name=guide_name, member_id=m.id)
        last = subs[-1] if subs else None
        portrait = f"s{last.id} {last.status}" + ("" if last.outputs else " (no portrait yet)") if last else "-"
        rows.append([m.id, m.first, m.last, consent.action if consent else "none",
                     ", ".join(consent.uses) if consent and consent.given else "",
                     portrait, consent_code(m.id, store.root) if admin else "(admins only)"])
        pending += [(f"s{s.id} · {m.first} {m.last}", s.id) for s in subs if s.status == "pending" and s.outputs]
    return rows, gr.Dropdown(choices=pending, value=pending[0][1] if pending else None)


def enrol(guide_name: str, files: list[str] | None, csv_file: str | None, token: str,
          profile: gr.OAuthProfile | None, request: gr.Request):
    actor = _admin(guide_name, token, profile)
    if not files and not csv_file:
        raise gr.Error("Upload member photos (or a zip of them), a CSV of names, or both.")
    store = _store()
    people_by_file: dict = {}
    lines = []
    if csv_file:
        try:
            people = read_people_csv(Path(csv_file).read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise gr.Error(f"CSV: {exc}")
        _, created = add_people(store, guide_name, people, actor)
        people_by_file = {p["file"]: p for p in people if p["file"]}
        lines.append(f"{len(people)} people in the CSV ({len(created)} new).")
    if files:
        tmp = session_of(request).ensure().dir / "team-upload"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            photos, problems = unpack_uploads(files, tmp)
            out = enrol_photos(store, guide_name, photos, actor, people_by_file)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # kept copies live in member folders; uploads go
            # The web server's own copies of the uploads go too: photos of members without consent
            # must not linger in its cache.
            forget_copies((), [*files, *([csv_file] if csv_file else [])])
        lines.append(f"{len(out.submitted)} photo(s) queued for standardisation, {len(out.created)} new member(s).")
        if out.waiting_consent:
            lines.append(f"**{len(out.waiting_consent)} member(s) have not consented yet** (members "
                         f"{', '.join(map(str, out.waiting_consent))}): their photos were not kept. Send each "
                         "their consent code; upload again once they have consented.")
        lines += [f"- {p}" for p in problems + out.problems]
    # The uploads were consumed (kept photos now live in member folders; the rest were deleted), so
    # the upload boxes are cleared: uploading again is a deliberate act.
    return "\n\n".join(lines), *members_table(guide_name, token, profile), None, None


def _member_can_act(member_id, code: str, profile: gr.OAuthProfile | None) -> int:
    """The member themself: their personal code, or signed in as the Hub username on record."""
    if member_id is None:
        raise gr.Error("Enter your member number.")
    member_id = int(member_id)
    try:
        member = _store().member(member_id)
    except NotFound:
        raise gr.Error("Unknown member number, or the code does not match.") from None
    signed_in = profile is not None and member.external_username and \
        profile.username.lower() == member.external_username.lower()
    if not signed_in and not check_code(member_id, code, _store().root):
        raise gr.Error("Unknown member number, or the code does not match.")
    return member_id


def give_consent(guide_name: str, member_id, code: str, uses: list[str], profile: gr.OAuthProfile | None):
    member_id = _member_can_act(member_id, code, profile)
    store = _store()
    notice = store.current_guide(store.member(member_id).guide_name).guide.governance.notice_version
    try:
        store.record_consent(member_id, notice, uses or [], given_by=f"member:{member_id}")
    except TeamError as exc:
        raise gr.Error(str(exc))
    return f"Thank you: consent recorded for {', '.join(uses)} (notice {notice})."


def withdraw_consent(guide_name: str, member_id, code: str, profile: gr.OAuthProfile | None):
    member_id = _member_can_act(member_id, code, profile)
    _store().withdraw_consent(member_id, f"member:{member_id}")
    return "Consent withdrawn. Nothing more will be made from your photos; use Delete my data to remove them."


def delete_member_data(guide_name: str, member_id, code: str, profile: gr.OAuthProfile | None):
    member_id = _member_can_act(member_id, code, profile)
    folder = _store().member_dir(member_id)
    copies = forget_copies(folder.rglob("*")) if folder.is_dir() else 0  # what the admin's page was shown
    summary = _store().opt_out(member_id, f"member:{member_id}")
    return (f"Deleted: {summary.files_deleted} file(s), your member folder and {copies} copies the web server "
            "had shown. Your consent is withdrawn and "
            "your name removed; the audit log keeps only that member number's actions.")


def standardise(guide_name: str, background: str | None, token: str, profile: gr.OAuthProfile | None,
                request: gr.Request, progress=gr.Progress(track_tqdm=True)):
    actor = _admin(guide_name, token, profile)
    work = session_of(request).ensure().dir / "team-work"
    shutil.rmtree(work, ignore_errors=True)
    try:
        reports = standardize_queue(_store(), guide_name, actor, work, background=background or None)
    except PresetError as exc:  # a background the guide does not approve
        raise gr.Error(str(exc))
    if not reports:
        raise gr.Error("Nothing to standardise: upload photos of members who have consented first.")
    report = reports[-1]
    gallery = [(p.output, f"{p.person.get('first', '')} {p.person.get('last', '')} · {p.verdict}")
               for p in report.photos if p.output]
    failed = [f"- {p.person.get('first', '')} {p.person.get('last', '')}: "
              + "; ".join(r.message for r in p.reasons) for p in report.photos if p.verdict != "ok"]
    text = (f"**{len(gallery)} portrait(s) made with {report.guide}, background {report.background}.**\n\n"
            + _consistency_table(report.to_dict().get("team", {}))
            + ("\n\nProblems:\n" + "\n".join(failed) if failed else ""))
    return gallery, report.files.get("contact_sheet"), text, report.files.get("report"), \
        *members_table(guide_name, token, profile)


def approve_submission(guide_name: str, submission_id, reason: str, token: str, profile: gr.OAuthProfile | None):
    return _decide(guide_name, submission_id, reason, True, token, profile)


def reject_submission(guide_name: str, submission_id, reason: str, token: str, profile: gr.OAuthProfile | None):
    return _decide(guide_name, submission_id, reason, False, token, profile)


_METRICS = {  # team report key -> (label, unit, digits)
    "eye_line": ("Eye line (share of height from the top)", "", 3),
    "head_height": ("Head size (share of height)", "", 3),
    "background_delta_e": ("Background ΔE to the approved colour", "", 1),
    "face_cct": ("Face colour temperature", " K", 0),
    "face_cct_before": ("… before the grade", " K", 0),
    "face_l": ("Face brightness (L*)", "", 1),
    "face_l_before": ("… before the grade", "", 1),
}


def _consistency_table(team: dict) -> str:
    """The team report's spreads as a table: the numbers, not only a verdict."""
    rows = ["| measure | median | spread (max − min) | std | min | max |", "|---|---|---|---|---|---|"]
    for key, (label, unit, d) in _METRICS.items():
        v = team.get(key)
        if isinstance(v, dict) and v.get("n"):
            f = lambda x: f"{x:.{d}f}{unit}"  # noqa: E731
            rows.append(f"| {label} | {f(v['median'])} | {f(v['range'])} | {f(v['std'])} | {f(v['min'])} | {f(v['max'])} |")
    counts = ", ".join(f"{team.get(k, 0)} {k}" for k in ("ok", "warn", "fail"))
    return f"Team verdict **{team.get('verdict', '-')}** ({counts}).\n\n" + "\n".join(rows)


def _decide(guide_name: str, submission_id, reason: str, approve: bool, token: str, profile: gr.OAuthProfile | None):
    actor = _admin(guide_name, token, profile)
    if submission_id is None:
        raise gr.Error("Pick a portrait from the queue.")
    try:
        if approve:
            sub = _store().approve(int(submission_id), actor, reason or None)
        else:
            sub = _store().reject(int(submission_id), actor, reason)
    except (TeamError, PermissionError) as exc:
        raise gr.Error(str(exc))
    return f"s{sub.id} {sub.status} by {actor}.", *members_table(guide_name, token, profile)


def export_approved(guide_name: str, token: str, profile: gr.OAuthProfile | None, request: gr.Request):
    actor = _admin(guide_name, token, profile)
    out = session_of(request).ensure().dir / "team-export"
    shutil.rmtree(out, ignore_errors=True)
    try:
        zip_path = export_library(_store(), guide_name, actor, out, data_dir=data_root())
    except TeamError as exc:
        raise gr.Error(str(exc))
    n = len(approved_library(_store(), guide_name))
    return str(zip_path), f"{n} approved portrait(s), signed, named by the guide's template."


def audit_rows(guide_name: str, token: str, profile: gr.OAuthProfile | None):
    _admin(guide_name, token, profile)
    return [[e.at.isoformat(timespec="seconds"), e.actor, e.action, e.target, json.dumps(e.details)]
            for e in _store().audit_entries(limit=200)]


def build_team_tab(cpu_queue: dict | None = None):
    """The Team tab's layout and events (called inside the app's Blocks); returns what the app's
    load event fills: the guide dropdown, and the components :func:`show_guide` updates.
    ``cpu_queue``: the app's concurrency settings for CPU-heavy steps (standardising, exporting)."""
    cpu = cpu_queue or {}
    with gr.Tab("7 · Team", elem_id="team-tab"):
        gr.Markdown("Standardise studio or phone photos of your team to one style guide: the same crop, "
                    "background and colour, **with no generated faces**. Members consent first; approvers decide.")
        with gr.Row():
            if ON_SPACE:
                gr.LoginButton()
            token = gr.Textbox(label="Admin token (local installs)", type="password", elem_id="team-token", scale=2)
            # Custom values allowed: guides saved after start-up are valid too; handlers check the name.
            guide_dd = gr.Dropdown(choices=guide_names(), value="acme", label="Team style guide",
                                   allow_custom_value=True, elem_id="team-guide", scale=2)
        guide_md = gr.Markdown(elem_id="team-guide-info")
        with gr.Accordion("Edit or upload the style guide (saving makes a new version)", open=False):
            guide_code = gr.Code(language="yaml", label="Style guide YAML", elem_id="team-guide-yaml")
            guide_file = gr.File(label="Or upload a guide (.yaml)", file_types=[".yaml", ".yml"])
            save_btn = gr.Button("Save as a new version")
            save_md = gr.Markdown()
        with gr.Accordion("Members: upload photos and names", open=True):
            with gr.Row():
                batch = gr.File(label="Member photos, or a zip of them (named first_last.jpg)", file_count="multiple",
                                file_types=["image", ".heic", ".zip"], elem_id="team-photos")
                csv_file = gr.File(label="Optional CSV: first,last,email,username,file", file_types=[".csv"])
            enrol_btn = gr.Button("Add members and photos", variant="primary", elem_id="team-enrol")
            enrol_md = gr.Markdown(elem_id="team-enrol-status")
            members_df = gr.Dataframe(headers=MEMBER_HEADERS, interactive=False, label="Members",
                                      elem_id="team-members")
        with gr.Accordion("For team members: give or withdraw consent", open=False):
            notice_md = gr.Markdown()
            with gr.Row():
                member_nb = gr.Number(label="Your member number", precision=0, elem_id="consent-member")
                code_tb = gr.Textbox(label="Your consent code", elem_id="consent-code")
            uses_cb = gr.CheckboxGroup(choices=_all_uses(), value=[], label="I agree to these uses",
                                       elem_id="consent-uses")
            with gr.Row():
                consent_btn = gr.Button("I consent", variant="primary", elem_id="consent-button")
                withdraw_btn = gr.Button("Withdraw consent")
                forget_btn = gr.Button("Delete my data", variant="stop")
            consent_md = gr.Markdown(elem_id="consent-status")
        with gr.Row():
            # Any guide's background id may come through the API; the guide itself checks it.
            bg_dd = gr.Dropdown(label="Background", allow_custom_value=True, elem_id="team-background")
            std_btn = gr.Button("Standardise waiting photos", variant="primary", elem_id="team-standardise")
            redo_btn = gr.Button("Re-standardise to the current guide version", elem_id="team-restandardise")
        std_gallery = gr.Gallery(label="Standardised portraits", columns=5, height="auto", elem_id="team-gallery")
        with gr.Row():
            sheet = gr.Image(label="Contact sheet", type="filepath", interactive=False, elem_id="team-sheet")
            with gr.Column():
                report_md = gr.Markdown(elem_id="team-report")
                report_file = gr.File(label="Consistency report (JSON)", interactive=False)
        with gr.Row():
            queue_dd = gr.Dropdown(label="Approval queue", elem_id="team-queue")
            reason_tb = gr.Textbox(label="Reason (needed to reject)", elem_id="team-reason")
            approve_btn = gr.Button("Approve", elem_id="team-approve")
            reject_btn = gr.Button("Reject", variant="stop", elem_id="team-reject")
        decision_md = gr.Markdown(elem_id="team-decision")
        with gr.Row():
            lib_btn = gr.Button("Export the approved library", variant="primary", elem_id="team-export")
            lib_file = gr.File(label="Library (zip)", interactive=False, elem_id="team-library")
        lib_md = gr.Markdown()
        with gr.Accordion("Audit log", open=False):
            audit_btn = gr.Button("Show the audit log")
            audit_df = gr.Dataframe(headers=["when", "who", "action", "target", "details"], interactive=False)

        admin_in = [token]
        guide_out = [guide_md, guide_code, bg_dd, uses_cb, notice_md]
        table_out = [members_df, queue_dd]
        guide_dd.change(show_guide, guide_dd, guide_out).then(members_table, [guide_dd, token], table_out)
        guide_dd.focus(lambda name: gr.Dropdown(choices=guide_names(), value=name), guide_dd, guide_dd)
        token.submit(members_table, [guide_dd, token], table_out)
        save_btn.click(save_guide, [guide_code, guide_file, *admin_in], [guide_dd, save_md], api_name="team_save_guide")
        enrol_btn.click(enrol, [guide_dd, batch, csv_file, *admin_in], [enrol_md, *table_out, batch, csv_file],
                        api_name="team_enrol", **cpu)
        consent_btn.click(give_consent, [guide_dd, member_nb, code_tb, uses_cb], consent_md, api_name="team_consent")
        withdraw_btn.click(withdraw_consent, [guide_dd, member_nb, code_tb], consent_md, api_name="team_withdraw")
        forget_btn.click(delete_member_data, [guide_dd, member_nb, code_tb], consent_md, api_name="team_delete_member",
                         queue=False)  # deleting never waits behind a full queue
        std_btn.click(standardise, [guide_dd, bg_dd, *admin_in], [std_gallery, sheet, report_md, report_file, *table_out],
                      api_name="team_standardise", **cpu)
        redo_btn.click(restandardise, [guide_dd, *admin_in], [decision_md, *table_out], api_name="team_restandardise")
        approve_btn.click(approve_submission, [guide_dd, queue_dd, reason_tb, *admin_in], [decision_md, *table_out],
                          api_name="team_approve")
        reject_btn.click(reject_submission, [guide_dd, queue_dd, reason_tb, *admin_in], [decision_md, *table_out],
                         api_name="team_reject")
        lib_btn.click(export_approved, [guide_dd, *admin_in], [lib_file, lib_md], api_name="team_export", **cpu)
        audit_btn.click(audit_rows, [guide_dd, *admin_in], audit_df, api_name="team_audit")
    return guide_dd, guide_out, [guide_dd, token], table_out
