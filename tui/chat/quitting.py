"""What quitting the app cuts short, asked before (Ctrl+Q) and said after (on stderr).

An add of documents asked first and said how far it got; an export or a download on F3 and the
first start's preparation of the built-in models ended at once without a word, and the next start
began them again from nothing (t53).
"""

from __future__ import annotations

from typing import Any

ADDING = ("Documents are still being added. Quit anyway? The files done stay indexed; adding the same folder "
          "again goes on where it stopped.")


def _model_job(app: Any) -> str:
    """"export" or "download" while the Models panel (F3) runs one, else ''."""
    if not app.is_screen_installed("models"):
        return ""
    return str(getattr(app.get_screen("models"), "long_job", ""))


def _cut_short(app: Any) -> tuple[str, str]:
    """What quitting now would cut short, as (the question Ctrl+Q asks first, the line for stderr
    after): an F3 export or download, or the first start's preparation; ('', '') when none runs."""
    job = _model_job(app)
    if job == "export":
        return ("A model export is running (F3). Quit anyway? It stops, and nothing half-written is kept: export "
                "the model again to finish it.",
                "the model export (F3) stopped when the app quit; nothing of it was kept. Export it again to finish "
                "it.")
    if job == "download":
        return ("A model download is running (F3). Quit anyway? The files fetched so far are kept, and the same "
                "download goes on from there.",
                "the model download (F3) stopped when the app quit; the files fetched are kept, and downloading "
                "it again goes on from there.")
    if app.preparing is not None:
        step, steps = app.preparing
        return (f"The built-in models are being prepared (first start, step {step} of {steps}). Quit anyway? The "
                "next start prepares them again from the beginning (about a minute).",
                f"the built-in models were being prepared (step {step} of {steps}) when the app quit; the next "
                "start prepares them again.")
    return "", ""


def quit_question(app: Any) -> str:
    """The question Ctrl+Q asks first, or '' when nothing long runs."""
    return ADDING if app._ingesting() else _cut_short(app)[0]


def quit_note(app: Any) -> str:
    """One line for stderr once the app is gone, when it quit during an export, a download or the
    first start's preparation; '' otherwise (an add of documents says its own, from its marker)."""
    return _cut_short(app)[1]
