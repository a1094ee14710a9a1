"""Messages that the Models screen's thread workers post (workers never touch widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from pgpt.runtime.hub.access import AccessReport
    from pgpt.runtime.hub.download import DownloadProgress
    from pgpt.runtime.footprint import Footprint
    from pgpt.runtime.models import DeletedModel, ModelInfo


@dataclass
class ModelsListed(Message):
    """The exported models with their footprints (by name), the one chat uses, the repos to suggest and
    why CUDA cannot run ('' = it can)."""

    models: list[ModelInfo]
    footprints: dict[str, Footprint]
    active: str
    repos: list[str]
    cuda_reason: str
    served: list[str] | None = None  # a client's server: the chat models it serves (None: no server)


@dataclass
class AccessChecked(Message):
    """The access preflight of a repo ended (any status: the report names the problem)."""

    report: AccessReport


@dataclass
class LocalChecked(Message):
    """A model file or folder on this machine was looked at: what it is, and the type to export it as."""

    text: str
    dtype: str


@dataclass
class DownloadTick(Message):
    """Bytes of the current file and of the whole download; a newer tick replaces an older one."""

    tick: DownloadProgress

    def can_replace(self, message: Message) -> bool:
        """Only the latest tick matters, so a busy screen skips frames, not keystrokes."""
        return isinstance(message, DownloadTick)


@dataclass
class ExportStage(Message):
    """One stage line of a running export (resolve, load, export, quantize, validate, done)."""

    stage: str
    text: str


@dataclass
class JobEnded(Message):
    """A download or export ended; ``model`` is the exported model, ``active`` whether chat uses it now."""

    summary: str
    model: ModelInfo | None = None
    active: bool = False
    cancelled: bool = False


@dataclass
class ModelDeleted(Message):
    """A model was deleted; ``now`` is the chat model in effect afterwards ('' when none is left)."""

    deleted: DeletedModel
    now: str
