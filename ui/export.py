"""Step 6 handler: export a signed bundle."""
import json
import shutil
from pathlib import Path

import gradio as gr

from pipeline.export import EXPORT_SPECS, ExportError, export_framed
from pipeline.generate import Lineage
from pipeline.intake import IntakeError
from pipeline.presets import PresetError, get_preset
from pipeline.session import data_root

from . import validate
from .common import note_uploads
from .common import session_of as _session



def export_files(spec_names: list[str], first: str, last: str, real: bool, uploads: list[str] | None,
                 request: gr.Request, progress=gr.Progress(track_tqdm=True)):
    session = _session(request).ensure()
    first, last = validate.text(first, "First name", 100), validate.text(last, "Last name", 100)
    if uploads and len(uploads) > validate.MAX_UPLOADS:
        raise gr.Error(f"Export at most {validate.MAX_UPLOADS} images at a time.")
    specs = EXPORT_SPECS
    if uploads:
        note_uploads(session, uploads)
        images = {Path(f).stem: f for f in uploads}
    else:  # this session's results: the approved ones once a review has approved any
        lineage, approved = Lineage(session.dir), session.approved()
        images = {i: str(session.results_dir / lineage.get(i)["image"]) for i in lineage.ids()
                  if not approved or i in approved}
        specs = _preset_specs({lineage.spec(i).preset for i in images})
    if not images:
        raise gr.Error("Upload images to export, or generate results first.")
    if not spec_names:
        raise gr.Error("Pick at least one file spec.")
    out = session.dir / "export"
    shutil.rmtree(out, ignore_errors=True)
    try:
        zip_path, unframed = export_framed(images, spec_names, out, person={"first": first, "last": last},
                                           generated=not real, data_dir=data_root(), specs=specs)
    except (IntakeError, ValueError) as exc:
        raise gr.Error(str(exc))
    except ExportError as exc:  # e.g. disk full: export_bundle already removed its partial files
        raise gr.Error(exc.strerror or str(exc), title="Export failed") from None
    if unframed:
        gr.Warning(f"{len(unframed)} image(s) had no face to frame and were centre-cropped.")
    return str(zip_path), json.loads((out / "manifest.json").read_text())


def _preset_specs(presets: set[str]):
    """The preset's export overrides (sizes, format, quality) when every result shares one preset."""
    if len(presets) == 1 and (name := next(iter(presets))):
        try:
            return get_preset(name).resolved_export_specs()
        except PresetError:  # a result made with a preset that was since removed
            pass
    return EXPORT_SPECS
