"""What every step's handlers share."""
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
