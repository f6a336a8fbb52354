"""`alexnet demo`: a Gradio page to try a net in (panels.py computes, app.py lays the page out)."""
