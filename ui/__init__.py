"""Gradio event handlers, one module per app step. They call pipeline/ and hold no state."""
