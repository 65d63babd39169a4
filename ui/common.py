"""What every step's handlers share."""
import gradio as gr

from pipeline.session import Session


def session_of(request: gr.Request) -> Session:
    """This browser session's private folder (named by a hash of Gradio's session id)."""
    return Session(request.session_hash)
