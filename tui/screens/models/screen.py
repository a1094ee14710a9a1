"""The Models screen (F3): check, download and export a Hub model; list, choose and delete local models."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import Checkbox, Footer, Input, ProgressBar, RadioButton, RadioSet, Static
from textual.worker import Worker, WorkerState

from pgpt.runtime.errors import Cancelled, PgptError
from pgpt.tui.chat.messages import ModelChanged
from pgpt.tui.jobs import WELL_KNOWN_REPOS, export_name, local_model
from pgpt.tui.screens.documents.widgets import unquoted
from pgpt.tui.screens.models.messages import (
    AccessChecked, DownloadTick, ExportStage, JobEnded, LocalChecked, ModelDeleted, ModelsListed,
)
from pgpt.tui.screens.models.info_area import InfoAreaMixin
from pgpt.tui.screens.models.report import describe_access, download_lines, export_stages
from pgpt.tui.screens.models.table import ConfirmDelete, ModelTable
from pgpt.tui.screens.models.toggles import MarkedCheckbox, MarkedRadioButton
from pgpt.tui.screens.models.workers import ModelWorkersMixin
from pgpt.tui.screens.panel import PanelScreen, app_error
from pgpt.tui.sanitize import clean_text

if TYPE_CHECKING:
    from pgpt.runtime.models import ModelInfo
    from pgpt.runtime.settings import Settings

DTYPES = ("fp32", "fp16", "int8", "int4")
HELP = ("Enter or ^r checks the repo's access (gated? token? reachable?), ^g downloads it, ^b downloads and "
        "exports it as the chosen type (^t picks it; ^f adds fast prompts to an int8 or int4 model over 500M "
        "parameters: an int8 prefill graph that read prompts 1.6-1.8x faster on 2 CPU cores, for about 0.75 "
        "byte per weight more memory). A .gguf file or model folder on this machine: Enter says what it is and "
        "picks its type, ^b exports it. Tab moves on to this text (arrows scroll it), then to the model list: "
        "there Enter makes a model the chat model and Delete deletes it. Inside tmux, whose prefix is ^b, press ^b "
        "twice; Ctrl+P names every action here.")


class ModelsScreen(InfoAreaMixin, ModelWorkersMixin, PanelScreen):
    """Get models from the Hub and manage the exported ones; a running job survives going back to the chat."""

    SHOWS_FAILURES = True

    DEFAULT_CSS = """
    ModelsScreen .panel-title { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    ModelsScreen #repo { margin: 0; }
    ModelsScreen #dtype-row { height: 1; padding: 0 1; }
    ModelsScreen #dtype-label { width: 9; }
    ModelsScreen #dtype { width: auto; layout: horizontal; background: transparent; }
    ModelsScreen #dtype > RadioButton { width: auto; margin-right: 2; }
    ModelsScreen #prefill { width: auto; margin-left: 2; background: transparent; }
    ModelsScreen #dtype-note { height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
    ModelsScreen #info { height: 1fr; min-height: 3; padding: 0 1; border-top: hkey $panel-lighten-2; }
    ModelsScreen #job-row { height: 1; display: none; padding: 0 1; }
    ModelsScreen #job-bar { width: auto; }
    ModelsScreen #job-bar Bar { width: 20; }
    ModelsScreen #job-total { width: 1fr; margin-left: 2; color: $text-muted; }
    ModelsScreen #job-file { height: 1; display: none; padding: 0 1; color: $text-muted; }
    ModelsScreen #models { height: auto; max-height: 50%; }  /* the rest goes to the diagnosis */
    """
    BINDINGS = [
        Binding("ctrl+r", "check", "Check"),
        Binding("ctrl+g", "download", "Get"),
        Binding("ctrl+b", "export", "Export"),
        # Not in the footer (80 columns are full): the type row's label names the key.
        Binding("ctrl+t", "next_dtype", "Type", show=False),
        Binding("ctrl+f", "toggle_prefill", "Fast prompts", show=False),
        Binding("ctrl+x", "stop", "Stop", priority=True),  # priority: the Input would cut
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._cancel: threading.Event | None = None  # set while a check, download or export runs
        self._job = ""
        self._stages: list[str] = []  # of the running export
        self._stage_reached = 0  # its furthest stage, which the bar shows
        self._lines: list[str] = []
        self._models: dict[str, ModelInfo] = {}
        self._active = ""
        self._cuda_reason: str | None = None  # None until the first listing has looked
        self._served: list[str] | None = None  # a client's server's chat models, once listed
        self._dtype = "fp32"  # the export type chosen, as the RadioSet starts

    @property
    def busy(self) -> bool:
        """Whether a check, download or export is running."""
        return self._cancel is not None

    @property
    def long_job(self) -> str:
        """"export" or "download" while one runs (and is not being stopped), else ''."""
        return self._job if self._job in ("download", "export") and not self._cancel_requested() else ""

    def compose(self) -> ComposeResult:
        yield Static("Models · a Hub repo id (→ takes the suggestion) or a local .gguf · Esc: back",
                     classes="panel-title")
        yield Input(placeholder="owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct, or a .gguf path", id="repo",
                    suggester=SuggestFromList(WELL_KNOWN_REPOS, case_sensitive=False))
        with Horizontal(id="dtype-row"):
            yield Static("^t Type", id="dtype-label")
            with RadioSet(id="dtype", compact=True):
                for dtype in DTYPES:
                    yield MarkedRadioButton(dtype, value=dtype == "fp32", id=f"dtype-{dtype}", compact=True,
                                            disabled=dtype == "fp16")  # until the GPU check says otherwise
            yield MarkedCheckbox("^f fast prompts", id="prefill", compact=True)
        yield Static("fp16: checking for a usable GPU…", id="dtype-note")
        with VerticalScroll(id="info"):
            yield Static(HELP, id="diagnosis")
        with Horizontal(id="job-row"):
            yield ProgressBar(id="job-bar", show_eta=True)
            yield Static("", id="job-total")
        yield Static("", id="job-file")
        yield ModelTable(id="models")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        # The type row has its keys (^t, ^f): Tab skips it, so it reaches the model list as the help says.
        self.query_one("#dtype", RadioSet).can_focus = False
        self.query_one("#prefill", Checkbox).can_focus = False
        self.query_one("#repo", Input).focus()

    def on_screen_resume(self) -> None:
        self.refresh_models()  # a model may have been exported or deleted from the command line meanwhile

    def opened(self) -> None:
        """F3 (not a closed dialog: Delete's left the list) showed the panel again: with nothing running,
        the repo field has the focus, as at the first visit (F3 reopened on the list, where typing was
        lost and Enter loaded the active model again)."""
        if self._cancel is None:
            self.query_one("#repo", Input).focus()

    # User actions.

    @on(Input.Submitted, "#repo")
    def _submitted(self) -> None:
        self.action_check()

    def action_check(self) -> None:
        """Run the access preflight of the repo typed."""
        repo = self._repo()
        if not repo:
            return
        path = local_model(repo)
        self._start("check", f"Looking at {path}…" if path else f"Checking {repo}…")
        if path:
            self.run_local_check(path)
        else:
            self.run_check(repo)

    def action_download(self) -> None:
        """Download the repo typed, with per-file and total progress."""
        repo = self._repo()
        if repo and local_model(repo):
            self._show(f"{repo} is on this machine already: ^b exports it as {self.dtype} (^t picks the type).")
        elif repo:
            self.run_download(repo, "", self._start("download", f"Downloading {repo}…"))

    def action_export(self) -> None:
        """Download (verified, resumed) then export the repo typed as the chosen type."""
        repo, dtype = self._repo(), self.dtype
        if not repo:
            return
        path = local_model(repo)
        if path:  # a name exported before gets a new version, as pgpt-export gives it
            self._stages = export_stages(dtype)[1:]
            self.run_local_export(path, dtype, self._start("export", f"Exporting {path} as {dtype}…"), self.prefill)
            return
        name = f"{export_name(repo)}-{dtype}"
        if name in self._models:
            self._show(f"{name} is already exported; delete it first (Tab to the list, then Delete) or choose "
                       f"another type.")
            return
        self._stages = export_stages(dtype)
        self.run_download(repo, dtype, self._start("export", f"Exporting {repo} as {dtype}…"), self.prefill)

    def action_stop(self) -> None:
        """Cancel the download (at once; what it fetched stays for the next run) or the export (at its
        next progress step)."""
        if self._cancel is not None:
            self._cancel.set()
            self._add_line("stopping…")

    def action_next_dtype(self) -> None:
        """Choose the next type that can be exported here (fp16 is skipped without a GPU)."""
        buttons = [b for b in self.query_one("#dtype", RadioSet).query(RadioButton) if not b.disabled]
        current = next((n for n, b in enumerate(buttons) if b.id == f"dtype-{self.dtype}"), -1)
        self._choose(buttons[(current + 1) % len(buttons)].id or "dtype-fp32")

    def action_toggle_prefill(self) -> None:
        """Ask for (or not) the int8 prefill graph of a large int8/int4 export."""
        box = self.query_one("#prefill", Checkbox)
        box.value = not box.value

    @property
    def prefill(self) -> str:
        """pgpt-export's --prefill for the next export: int8 with fast prompts, else auto."""
        return "int8" if self.query_one("#prefill", Checkbox).value else "auto"

    def action_use_model(self) -> None:
        """Make the model under the cursor the chat model; the chat reloads it."""
        from pgpt.runtime.models import set_active_model

        name = self.query_one(ModelTable).selected_name
        if not name:
            return
        served = [shown.removesuffix(" (default)") for shown in self._served or []]
        if self.settings.server and self._served is not None and name not in served:  # before any change
            self._show(f"The server at {self.settings.server} does not serve {name} (it serves: "
                       f"{', '.join(self._served) or 'no chat model'}). Export it on the server, or pick one of those.")
            return
        try:
            model = set_active_model(self.settings, name)
        except PgptError as error:  # an embedding model, or one deleted from outside
            self._show(app_error(error))
            return
        self._active = model.name
        self._show(f"{model.name} is now the chat model; " + (
            f"the chat asks the server at {self.settings.server} for it (it must hold a model of that name)."
            if self.settings.server else "the chat is loading it."))
        self.app.post_message(ModelChanged(model.name))
        self.refresh_models()

    def action_delete_model(self) -> None:
        """Ask, then delete the model under the cursor."""
        from pgpt.runtime.models import chat_model_after_deleting, chat_model_name

        model = self._models.get(self.query_one(ModelTable).selected_name)
        if model is None:
            return
        # the chat model now, not as last listed (a listing may be on its way)
        active = model.name == chat_model_name(self.settings)
        then = chat_model_after_deleting(self.settings, model.name) if active else ""
        self.app.push_screen(ConfirmDelete(model, active, then),
                             lambda yes: self.run_delete(model.name) if yes else None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Stop only while a download or export runs; the job keys while none runs and the list is not
        focused (the list's own keys take their place in the 80-column footer)."""
        if action == "stop":
            return self._job in ("download", "export") and not self._cancel_requested()
        if action in ("check", "download", "export"):
            return not self.busy and not isinstance(self.focused, ModelTable)
        return True

    @property
    def dtype(self) -> str:
        """The type chosen for the export."""
        return self._dtype

    def _choose(self, button_id: str) -> None:
        # kept here as well: the RadioSet learns of a button set from code one message later, and ^b or a
        # reader of `dtype` in between would get the old type (a race seen in CI)
        self._dtype = button_id.removeprefix("dtype-")
        self.query_one(f"#{button_id}", RadioButton).value = True

    @on(RadioSet.Changed, "#dtype")
    def _dtype_changed(self, event: RadioSet.Changed) -> None:
        self._dtype = (event.pressed.id or "dtype-fp32").removeprefix("dtype-")  # a click, or ours arriving

    # Messages from the workers.

    @on(ModelsListed)
    def _listed(self, message: ModelsListed) -> None:
        self._models = {m.name: m for m in message.models}
        self._active = message.active
        self.query_one(ModelTable).show_models(message.models, message.footprints, message.active,
                                               message.cuda_reason, self.settings.provider)
        self.query_one("#repo", Input).suggester = SuggestFromList(message.repos, case_sensitive=False)
        if message.cuda_reason != self._cuda_reason:
            self._cuda_reason = message.cuda_reason
            self._show_fp16(message.cuda_reason)
        said, self._served = self._served is not None, message.served
        if message.served is not None and not said and not self.busy:  # a client: the list is this machine's
            self._show(f"The chat asks the server at {self.settings.server}, which serves: "
                       f"{', '.join(message.served) or 'no chat model'}. The list below is this machine's "
                       "exports; Enter on one asks the server for the model of that name.")

    @on(AccessChecked)
    def _checked(self, message: AccessChecked) -> None:
        self._end_job()
        self._show(describe_access(message.report), markup=True)

    @on(LocalChecked)
    def _local_checked(self, message: LocalChecked) -> None:
        self._end_job()
        if not message.dtype:  # the export would refuse it: its reason, and no ^b offered
            self._show(message.text)
            return
        self._choose(f"dtype-{message.dtype}")
        self._show(f"{message.text} ^b exports it as {message.dtype} into the model cache (^t picks another type; "
                   "int8 keeps more quality, int4 takes less memory); a chat model then becomes the chat model.")

    @on(DownloadTick)
    def _download_tick(self, message: DownloadTick) -> None:
        total, this_file = download_lines(message.tick)
        self.query_one("#job-bar", ProgressBar).update(total=max(message.tick.total_bytes, 1),
                                                      progress=message.tick.done_bytes)
        self.query_one("#job-total", Static).update(clean_text(total))
        self.query_one("#job-file", Static).update(clean_text(this_file))

    @on(ExportStage)
    def _export_stage(self, message: ExportStage) -> None:
        stages = self._stages
        step = stages.index(message.stage) + 1 if message.stage in stages else 0
        # never backwards: the prefill graph's float pass reports "export" after "quantize" began, and the
        # bar went 67% -> 50% -> 67% (t53)
        step = max(step, self._stage_reached) if step else 0
        self._stage_reached = step or self._stage_reached
        if step:
            self.query_one("#job-bar", ProgressBar).update(total=len(stages), progress=step)
            self.query_one("#job-total", Static).update(f"stage {step}/{len(stages)}: {stages[step - 1]}")
            self.query_one("#job-file", Static).update("")
        line = f"{message.stage:>8}: {message.text}"
        # a heartbeat or a layer count repeats its line with other numbers: it updates that line (on a
        # busy machine they filled the last MAX_LINES and pushed the export's first stages out)
        if self._lines and re.sub(r"\d+", "#", self._lines[-1]) == re.sub(r"\d+", "#", clean_text(line)):
            self._lines = self._lines[:-1]
        self._add_line(line)

    @on(JobEnded)
    def _job_ended(self, message: JobEnded) -> None:
        self._end_job()
        self._add_line(message.summary, bold=not message.cancelled)
        if message.model is not None and message.active:
            self.app.post_message(ModelChanged(message.model.name))
        self.refresh_models()

    @on(ModelDeleted)
    def _deleted(self, message: ModelDeleted) -> None:
        from pgpt.tui.jobs import describe_deletion

        self._show(describe_deletion(message.deleted, message.now))
        if message.deleted.was_active:
            self.app.post_message(ModelChanged(message.now))
        self.refresh_models()

    @on(Worker.StateChanged)
    def _show_failure(self, event: Worker.StateChanged) -> None:
        """Show a failed job's message here too (PanelScreen logs and notifies it); the keys come back."""
        error = event.worker.error
        if event.state is not WorkerState.ERROR or error is None:
            return
        if event.worker.group == "models-job":
            if self._lines:  # the headline ("Exporting X as int8…") must not read as still running
                ended = "Stopped" if isinstance(error, Cancelled) else "Failed"
                self._lines[0] = f"{ended}: {self._lines[0].rstrip('…')}"
            self._end_job()
        self._add_line(app_error(error), bold=True)

    # Helpers (main thread only).

    def _repo(self) -> str:
        repo = unquoted(self.query_one("#repo", Input).value)
        if not repo:
            self._show("Type a Hub repo id first, such as HuggingFaceTB/SmolLM2-135M-Instruct.")
            self.query_one("#repo", Input).focus()
        elif self.busy:
            self._show(f"A {self._job} is running; ^x stops it.")
            return ""
        return repo

    def _start(self, job: str, text: str) -> threading.Event:
        """Show that ``job`` runs (keys, progress rows); returns its cancel event."""
        self._job, self._cancel = job, threading.Event()
        self._stage_reached = 0
        self._lines = []
        self._show(text)
        bar = self.query_one("#job-bar", ProgressBar)
        bar.update(total=None, progress=0)
        long_job = job != "check"
        self.query_one("#job-row").display = long_job
        self.query_one("#job-file").display = long_job
        self.query_one("#job-total", Static).update("")
        self.query_one("#job-file", Static).update("")
        self.refresh_bindings()
        return self._cancel

    def _end_job(self) -> None:
        self._job, self._cancel = "", None
        self.query_one("#job-row").display = False
        self.query_one("#job-file").display = False
        self.refresh_bindings()

    def _cancel_requested(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def _show_fp16(self, reason: str) -> None:
        fp16 = self.query_one("#dtype-fp16", RadioButton)
        fp16.disabled = bool(reason)
        note = f"fp16 is off: {reason}" if reason else "fp16 runs on the GPU (CUDA); int8 is the CPU's best."
        self.query_one("#dtype-note", Static).update(clean_text(note))
