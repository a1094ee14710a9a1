"""The Models screen's workers (F3): they run in threads and only post messages, never touch widgets."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from textual import work

from pgpt.runtime.errors import Cancelled, PgptError
from pgpt.tui.jobs import check_repo, describe_local, download_repo, export_download
from pgpt.tui.screens.models.messages import (
    AccessChecked, DownloadTick, ExportStage, JobEnded, LocalChecked, ModelDeleted, ModelsListed,
)
from pgpt.tui.screens.models.report import describe_export

if TYPE_CHECKING:
    from pathlib import Path

    from pgpt.runtime.settings import Settings


class ModelWorkersMixin:
    """Listing, checking, downloading, exporting and deleting models, off the UI thread."""

    settings: Settings
    post_message: Any

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-list")
    def refresh_models(self) -> None:
        """List the exported models and their footprints, the chat model, the repos to suggest and whether
        CUDA can run."""
        from pgpt.runtime.footprint import footprint
        from pgpt.runtime.models import chat_model_name, list_models
        from pgpt.runtime.llm.session import cuda_unavailable_reason
        from pgpt.tui.jobs import known_repos

        models = list_models(self.settings)
        self.post_message(ModelsListed(models, {m.name: footprint(m) for m in models}, chat_model_name(self.settings),
                                       known_repos(self.settings, models), cuda_unavailable_reason(),
                                       self._served_models()))

    def _served_models(self) -> list[str] | None:
        """A client's server's chat models, the default first ("name (default)"); None without a
        server or when it cannot be asked (the chat says why)."""
        if not self.settings.server:
            return None
        from pgpt.runtime.remote.client import connect

        try:
            remote = connect(self.settings)
        except PgptError:
            return None
        try:
            chats = remote.chat_models()
        except PgptError:
            return None
        finally:
            remote.close()
        return [f"{m['id']} (default)" if m.get("default") else str(m["id"])
                for m in sorted(chats, key=lambda m: not m.get("default"))]

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-job")
    def run_check(self, repo: str) -> None:
        """The access preflight (a few seconds at most: each request has a timeout)."""
        self.post_message(AccessChecked(check_repo(self.settings, repo)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-job")
    def run_local_check(self, path: Path) -> None:
        """What a model file or folder on this machine is (a GGUF's header is read: under a second)."""
        self.post_message(LocalChecked(*describe_local(path)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-job")
    def run_local_export(self, path: Path, dtype: str, cancel: threading.Event, prefill: str = "auto") -> None:
        """Export a model file or folder on this machine, as `pgpt-export PATH --dtype DTYPE` would."""
        try:
            self._export(None, str(path), dtype, prefill, cancel)
        except Cancelled as stopped:
            self.post_message(JobEnded(str(stopped), cancelled=True))

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-job")
    def run_download(self, repo: str, dtype: str, cancel: threading.Event, prefill: str = "auto") -> None:
        """Download and verify ``repo``; with a ``dtype``, then export it into the model cache
        (``prefill``: pgpt-export's --prefill)."""
        try:
            folder = download_repo(self.settings, repo, None, lambda tick: self.post_message(DownloadTick(tick)),
                                   cancel)
            if not dtype:
                self.post_message(JobEnded(f"{repo} is downloaded and verified against the Hub's checksums "
                                           f"({folder}). ^b exports it."))
                return
            self.post_message(ExportStage("download", f"{repo} downloaded and verified"))
            self._export(repo, str(folder), dtype, prefill, cancel)
        except Cancelled as stopped:
            self.post_message(JobEnded(str(stopped), cancelled=True))

    def _export(self, repo: str | None, folder: str, dtype: str, prefill: str, cancel: threading.Event) -> None:
        """Export ``folder`` (a download of ``repo``, or with None a model on this machine), posting its
        stage lines and its end."""
        model, active = export_download(self.settings, repo, folder, dtype, prefill, cancel=cancel,
                                        progress=lambda stage, text: self.post_message(ExportStage(stage, text)))
        self.post_message(JobEnded(describe_export(model, active), model, active))

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-delete")
    def run_delete(self, name: str) -> None:
        """Delete an exported model (its folder can be gigabytes: not on the UI thread)."""
        from pgpt.tui.jobs import delete_exported

        self.post_message(ModelDeleted(*delete_exported(self.settings, name)))
