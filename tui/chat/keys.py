"""The chat app's key actions: stop an answer, start a new chat, switch modes, copy, scroll; and which are live."""

from __future__ import annotations

import os
from typing import Any

from textual.widgets import Input

from pgpt.tui.chat.library import MODES, UNCHECKED
from pgpt.tui.chat.widgets import ChatLog, Turn

# The turns under a documents answer (ChatLog.add_details) that Ctrl+Y copies with it, as the notice names them.
DETAILS = {"quotes": "quotes", "closest": "closest passages", "sources": "sources"}
# show_keys too: a panel has its own F1 (PanelScreen.action_keys), out of its footer, which its keys fill
CHAT_ACTIONS = {"stop", "new_chat", "cycle_mode", "copy_answer", "scroll_log", "stop_ingest", "show_keys"}


class KeysMixin:
    """Mixed into ChatApp, whose state (engine, mode, reply, conversation) these actions change."""

    quit_note = ""  # what quitting cut short, for stderr after the app is gone

    def action_stop(self) -> None:
        """Stop the answer being written; what was written stays, marked (stopped)."""
        if self._reply is None:
            return
        self._cancel.set()
        if self.engine is None:  # still waiting for the model: nothing runs yet
            self._reply.show("", "(stopped)")
            self._close_reply("")
            self._set_status("Loading model…", "stopped")
        else:  # said at once: the model stops after its current step (seconds while a 1.5B reads, t53)
            self._set_status(self._model_label(), "stopping after the model's current step…")

    def action_help_quit(self) -> None:
        """Ctrl+C: stop the answer being written, as Esc does (a terminal user's reflex; Textual only said
        how to quit while the answer went on); while documents are being added (and no answer is in
        view), say that Ctrl+X stops adding (Textual's hint named only Ctrl+Q, and the add went on);
        with neither, Textual's hint that Ctrl+Q quits."""
        if self.answering and (len(self.screen_stack) == 1 or not self._ingesting()):
            self.action_stop()
        elif self._ingesting():
            self.notify("Documents are being added: Ctrl+X stops adding after the current batch (the files done "
                        "stay indexed); Ctrl+Q quits.", title="Adding documents", timeout=6)
        else:
            super().action_help_quit()  # type: ignore[misc]

    def action_new_chat(self) -> None:
        """Start an empty conversation; an answer being written is stopped and kept in the old one as
        Esc keeps it, marked, and that chat saved (Ctrl+N threw the question and its answer away)."""
        self.keep_stopped_answer()
        self._cancel.set()
        self._reply_id += 1
        self._reply = None
        self.conversation, self.asked, self.left_out_turns = [], [], 0
        self.saved = None
        self._chat.query_one(ChatLog).remove_children()
        self._set_status(self._model_label() if self.engine else "Loading model…")
        self._chat.query_one("#prompt", Input).focus()
        self.refresh_bindings()

    def action_cycle_mode(self) -> None:
        """Documents -> Chat -> Search; Documents and Search need the document index, which opens with
        the model: while that loads, every mode can be chosen (Ctrl+R was refused then, and the question
        typed next went to Chat mode); should the index not open, the load says so and picks Chat."""
        if self.answering:
            self.notify("Wait for the answer (or press Esc) before switching modes.", severity="warning")
            return
        self._mode_chosen = True
        order = list(MODES)
        mode = order[(order.index(self.mode) + 1) % len(order)]
        loading = self.engine is None and not self.load_error
        if mode != "chat" and self.library is None and not loading:
            self.notify("Documents and Search need the embedding model (pgpt-export --default).",
                        severity="warning")
            mode = "chat"
        self._set_mode(mode)

    def _set_mode(self, mode: str) -> None:
        """Show ``mode`` (docs, chat, search) on the input and the title; the next question is asked in it."""
        self.mode = mode
        hint = {"docs": "Ask about your documents", "chat": "Chat with the model",
                "search": "Search your documents"}[mode]
        prompt = self._chat.query_one("#prompt", Input)
        prompt.placeholder = f"{hint}, Enter sends (Ctrl+P: commands)"  # F1 is in the footer, Ctrl+R on the frame
        # on the input's frame too: the placeholder, the only sign of the mode, hides once one types
        prompt.border_title = f"{MODES[mode]} · Ctrl+R"
        self.sub_title = MODES[mode]

    async def action_quit(self) -> None:
        """Quit; while documents are being added, a model exported or downloaded, or the built-in models
        prepared, ask first (the app ended at once, and nothing said what was cut short, t53)."""
        from pgpt.tui.chat.quitting import quit_question
        from pgpt.tui.screens.confirm import Confirm

        question = quit_question(self)
        if not question:
            self.exit()
        elif not isinstance(self.screen, Confirm):
            self.push_screen(Confirm(question, yes="quit"), lambda yes: self.exit() if yes else None)

    def exit(self, result: object = None, return_code: int = 0, message: object = None) -> None:
        """Quit (Ctrl+Q, SIGTERM, SIGINT); an answer being written is kept as Esc keeps it, marked, and
        the chat saved: quitting during a chat's first answer left nothing on disk."""
        from pgpt.tui.chat.quitting import quit_note

        self.quit_note = quit_note(self)  # said on stderr once the app is gone (launch.py)
        self.stop_add_for_quit()
        self.keep_stopped_answer()
        super().exit(result, return_code, message)  # type: ignore[misc]

    def _handle_exception(self, error: Exception) -> None:
        """A bug reached Textual, which ends the app: the chat is saved and the traceback logged first
        (Textual printed a page of traceback with local variables on the terminal, the log had nothing)."""
        import logging

        logging.getLogger("pgpt.tui.chat.app").error("the app stopped on an unexpected error",
                                                     exc_info=(type(error), error, error.__traceback__))
        self._crash = error
        try:
            self.keep_stopped_answer()
        except Exception:  # half torn down: the error above is the one to report
            logging.getLogger("pgpt.tui.chat.app").exception("the chat could not be saved after the error")
        super()._handle_exception(error)  # type: ignore[misc]

    def _fatal_error(self) -> None:
        """What the terminal shows after the app ended on a bug: one paragraph, as the CLI prints it."""
        from rich.text import Text

        from pgpt.runtime.errors import user_message
        from pgpt.runtime.sanitize import strip_controls

        message = user_message(self._crash)
        self.bell()
        self._exit_renderables.append(Text(strip_controls(
            f"pgpt-tui: {message.title}: {message.text.replace('; the log file has details.', '.')} "
            f"The details are in {self.settings.log_file}; the chat was saved and the document index is "
            "unchanged. Start pgpt-tui again.")))
        self._close_messages_no_wait()

    def keep_stopped_answer(self) -> None:
        """Stop the answer being written, keep it as Esc keeps it (marked), and save the chat; nothing
        when no answer is being written. Quitting, Ctrl+N and a hangup (signals.py) call it."""
        if self._reply is not None and self.screen_stack:
            self._cancel.set()
            self._reply_id += 1  # the worker's last messages, if any arrive, are dropped
            draft = self._reply_mode == "docs" and self.engine is not None  # unchecked: no answer to keep
            answer = "" if draft else self._reply.text
            self._reply.show(answer, UNCHECKED if draft else "(stopped)")
            self._close_reply(answer)
            self.save_conversation()

    def action_suspend(self) -> None:
        """Ctrl+Z: back to the shell until `fg`, as vim or less do (it did nothing: t54). Only under a
        shell with job control: started without one (`ssh -t HOST pgpt-tui`), a stopped app could never
        be resumed, and the session would look hung."""
        if os.getpgrp() == os.getsid(0):  # our group leads the session: no job-control shell above us
            self.notify("Ctrl+Z needs a shell with job control, and this app was started without one (as by "
                        "`ssh -t HOST pgpt-tui`). Ctrl+Q quits.", severity="warning", timeout=6)
            return
        self.action_suspend_process()

    def redraw_after_suspend(self, _app: Any = None) -> None:
        """Paint the whole screen again after `fg` (after a SIGTSTP sent from outside, the screen came
        back blank but for the input until a panel was opened and closed: t54)."""
        self.refresh(layout=True)
        self.screen.refresh(layout=True)

    def action_copy_answer(self) -> None:
        """Copy the last answer (the one in view when scrolled up), with its quotes, closest passages or
        sources, to the clipboard with OSC 52 (the terminal's, so it works over SSH; inside tmux to its
        paste buffer too); without one, say why (a Ctrl+Y that did nothing after a stopped answer
        looked broken)."""
        answer = self._answer_to_copy()
        if answer is not None and answer.text:
            details = self._details_of(answer)
            text = "\n\n".join([answer.text] + [t.text for t in details])
            from pgpt.tui.chat.clipboard import copy_text

            where = copy_text(self, text)  # OSC 52, and tmux's buffer inside tmux, which drops OSC 52 (t54)
            with_what = " and its " + " and ".join(DETAILS[t.kind] for t in details) if details else ""
            which = "the last answer" if answer is self._last_answer() else "the answer in view"
            self.notify(f"Copied {which}{with_what} ({len(text)} characters) {where}.", timeout=4)
        elif answer is None:
            self.notify("Nothing to copy yet: no question has been answered in this chat.", timeout=3)
        elif answer.mark == UNCHECKED:
            self.notify("Nothing to copy: the last answer was stopped before it was checked.", timeout=3)
        else:
            self.notify(f"Nothing to copy: the last answer has no text {answer.mark}".rstrip() + ".", timeout=3)

    def _last_answer(self) -> Turn | None:
        """The last answer shown, wherever the view is."""
        answers = [t for t in self._chat.query(Turn) if t.kind == "assistant" and t is not self._reply]
        return answers[-1] if answers else None

    def _details_of(self, answer: Turn) -> list[Turn]:
        """The quotes, closest passages or sources shown under ``answer``: a "not found" copied only
        its sentence, not the passages the user is told to judge."""
        shown = list(self._chat.query(Turn))
        details = []
        for turn in shown[shown.index(answer) + 1:]:
            if turn.kind not in DETAILS:
                break
            details.append(turn)
        return details

    def _answer_to_copy(self) -> Turn | None:
        """The last answer shown, not the one being written; with the conversation scrolled up (PgUp),
        the last one that starts above the middle of the view: only the last could be copied (t72)."""
        answers = [t for t in self._chat.query(Turn) if t.kind == "assistant" and t is not self._reply]
        chat_log = self._chat.query_one(ChatLog)
        if chat_log.scroll_y < chat_log.max_scroll_y:
            middle = chat_log.scroll_y + chat_log.scrollable_content_region.height // 2
            answers = [t for t in answers if t.virtual_region.y <= middle] or answers
        return answers[-1] if answers else None

    def action_scroll_log(self, pages: int) -> None:
        """Scroll the conversation a page up (-1) or down (1) without leaving the input."""
        chat_log = self._chat.query_one(ChatLog)
        if pages < 0:
            chat_log.scroll_page_up()
        else:
            chat_log.scroll_page_down()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out Stop while nothing is being answered; scroll keys belong to dialogs when open."""
        if action in CHAT_ACTIONS and len(self.screen_stack) > 1:
            return False  # hidden on the panels: they act on the chat, which is not in view
        if action == "stop":
            return True if self.answering else None
        if action == "stop_ingest":
            return True if self._ingesting() else None
        return True
