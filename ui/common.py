"""What every step's handlers share."""
import json
import shutil
from pathlib import Path

import gradio as gr

from pipeline.review import Reference, build_reference
from pipeline.session import Session


def session_of(request: gr.Request) -> Session:
    """This browser session's private folder (named by a hash of Gradio's session id)."""
    return Session(request.session_hash)


def capture_reference(session: Session) -> Reference | None:
    """The identity reference from the confirmed capture photos (all of them before a confirm);
    None when there are none or no face was found in any."""
    capture = session.selected_photos() or session.photos()
    reference = build_reference(capture) if capture else None
    return reference if reference is not None and len(reference.files) else None


def note_uploads(session: Session, paths) -> None:
    """Remember uploads a handler used without storing them (review, export), so Delete my data
    can remove the web server's copies of them too."""
    ledger = session.ensure().dir / "uploads.json"
    known = json.loads(ledger.read_text()) if ledger.exists() else []
    ledger.write_text(json.dumps(sorted(set(known) | {str(p) for p in paths or []})))


def forget_copies(files, uploads=()) -> int:
    """Remove every copy Gradio's cache holds of ``files`` (and the cache folders of ``uploads``).

    Gradio keeps uploads and returned files in ``<cache>/<sha256 of seed + content>/<name>``, so
    hashing a file finds its copies. Returns the number of cache folders removed.
    """
    from gradio.processing_utils import hash_file
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder()).resolve()
    dirs = {cache / hash_file(f) for f in map(Path, files) if f.is_file() and not f.is_symlink()}
    dirs |= {Path(p).resolve().parent for p in uploads}
    removed = 0
    for d in dirs:
        if d.parent == cache and d.is_dir():  # only whole hash folders directly in the cache
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    return removed


def forget_session(session: Session) -> int:
    """Delete a session's folder and the web server's copies of its files (uploads are stored
    byte for byte, so their copies are found too)."""
    removed = 0
    if session.dir.is_dir():
        ledger = session.dir / "uploads.json"
        uploads = json.loads(ledger.read_text()) if ledger.exists() else []
        removed = forget_copies(session.dir.rglob("*"), uploads)
    session.delete()
    return removed
