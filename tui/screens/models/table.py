"""The Models screen's table of exported models, and the dialog that confirms a deletion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.coordinate import Coordinate

from pgpt.runtime.footprint import human_mb
from pgpt.runtime.llm.session import attention_needs_cpu
from pgpt.tui.jobs import quality_cell
from pgpt.tui.sanitize import clean_text
from pgpt.tui.screens.confirm import Confirm
from pgpt.tui.screens.panel import RowTable

if TYPE_CHECKING:
    from pgpt.runtime.footprint import Footprint
    from pgpt.runtime.models import ModelInfo

# "memory": expected RSS once loaded (pgpt.runtime.footprint); "on": the provider chat would run it
# on. The parameter count is left to `pgpt-tui models`, so that a row still fits 80 columns.
COLUMNS = ("name", "kind", "dtype", "disk", "memory", "quality", "on")
KINDS = {"embedding": "embed"}  # short enough for 80 columns


def provider_label(model: ModelInfo, cuda_reason: str, requested: str) -> str:
    """Where chat would run the model: runtime.session picks CUDA whenever it can run, unless asked
    for CPU, or (auto) for a fused export whose attention CUDA cannot run (not fp16)."""
    on_cpu = requested == "auto" and attention_needs_cpu(model.dtype, str(model.manifest.get("graph", "")))
    if requested != "cpu" and not cuda_reason and not on_cpu:
        return "CUDA"
    return "CPU (slow)" if model.dtype == "fp16" else "CPU"  # fp16 is made for CUDA


class ModelTable(RowTable):
    """The exported models, one per row keyed by name (● marks the chat model); Enter makes one the chat
    model, Delete deletes it."""

    BINDINGS = [
        Binding("enter", "screen.use_model", "Use"),
        Binding("delete", "screen.delete_model", "Delete"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        for label in COLUMNS:
            self.add_column(label, key=label)

    @property
    def selected_name(self) -> str:
        """The model under the cursor, or '' when the table is empty."""
        if not self.row_count:
            return ""
        row_key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key
        return str(row_key.value)

    def names(self) -> list[str]:
        """The models listed, in order."""
        return [str(row.key.value) for row in self.ordered_rows]

    def show_models(self, models: list[ModelInfo], footprints: dict[str, Footprint], active: str, cuda_reason: str,
                    requested: str) -> None:
        """Replace the rows, keeping the cursor on the same model when it is still there."""
        keep = self.selected_name
        self.clear()
        for model in models:
            mark = "● " if model.name == active else "  "
            sizes = footprints[model.name]
            self.add_row(mark + clean_text(model.name), clean_text(KINDS.get(model.kind, model.kind)),
                         clean_text(model.dtype), _size(model.size_bytes),
                         _size(sizes.expected_bytes), clean_text(quality_cell(model.manifest.get("quality", {}))),
                         provider_label(model, cuda_reason, requested), key=model.name)
        if keep in self.names():
            self.move_cursor(row=self.get_row_index(keep))


def _size(size: int) -> str:
    """659 MB, 1.4 GB: three digits at most, so the row fits 80 columns."""
    return human_mb(size / 1e6) if size < 1e9 else f"{size / 1e9:.1f} GB"


class ConfirmDelete(Confirm):
    """Asks before a model is deleted: y deletes, n or Esc keeps it."""

    def __init__(self, model: ModelInfo, active: bool, then: str = "") -> None:
        from pgpt.runtime.models import DEFAULT_EMBEDDER

        # what chat uses next: another exported chat model when one is left (the default first)
        switch = f"chat switches to {clean_text(then)}" if then else "chat prepares the built-in default again"
        note = f" It is the chat model: {switch}." if active else ""
        if model.kind == "embedding":  # documents need it: said before, not at the next search
            note = (" Documents cannot be indexed or searched without it until `pgpt-export --default` prepares it "
                    "again." if model.name == DEFAULT_EMBEDDER else " Documents indexed with it cannot be searched "
                    "without it.")
        super().__init__(f"Delete {clean_text(model.name)} ({model.size_bytes / 1e6:.0f} MB) from "
                         f"{clean_text(str(_cache_of(model.path)))}?{note}")
        self.model, self.active = model, active


def _cache_of(folder: Path) -> Path:
    """The model cache a model folder belongs to (a version lives in .versions/NAME/VERSION)."""
    return folder.parents[2] if folder.parent.parent.name == ".versions" else folder.parent
