"""What the Models screen says about an access check, a download tick and a finished export."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgpt.tui.sanitize import clean_text
from pgpt.tui.screens.panel import in_the_app

if TYPE_CHECKING:
    from pgpt.runtime.hub.access import AccessReport
    from pgpt.runtime.hub.download import DownloadProgress
    from pgpt.runtime.models import ModelInfo

HEADLINES = {
    "ok": "Ready to download",
    "gated_no_token": "Gated model: no token",
    "gated_not_accepted": "Gated model: terms not accepted for this token",
    "invalid_token": "Token rejected",
    "not_found": "Not found",
    "blocked": "Blocked by a firewall or proxy",
    "network_error": "Hub not reachable",
    "rate_limited": "Rate limited",
}


def describe_access(report: AccessReport) -> str:
    """The preflight's diagnosis as markup: a headline, the cause and next step, the terms URL."""
    lines = [f"[b]{HEADLINES.get(report.status, report.status)}[/b] · {clean_text(report.repo)}",
             clean_text(in_the_app(report.message))]
    if report.status.startswith("gated"):
        lines.append(f"[b]Accept the terms:[/b] {clean_text(report.url)}")
    if report.status == "ok":
        support = {True: "exportable", False: "NOT exportable", None: "support unknown"}
        lines.append(clean_text(f"license {report.license or '?'} · architecture {report.architecture or '?'} "
                                f"({support[report.architecture_supported]}) · ^g downloads, ^b exports"))
    if report.alternatives:
        lines.append(clean_text("Ungated models of a similar size: " + ", ".join(report.alternatives)))
    return "\n".join(lines)


def download_lines(tick: DownloadProgress) -> tuple[str, str]:
    """Two short lines: the whole download (bytes, speed, ETA) and the file being fetched."""
    eta = f"ETA {tick.eta_s:.0f} s" if tick.eta_s is not None else "ETA ?"
    total = f"{_mb(tick.done_bytes)}/{_mb(tick.total_bytes)} MB · {tick.bytes_per_s / 1e6:.1f} MB/s · {eta}"
    return total, f"file {tick.file}: {_mb(tick.file_done_bytes)}/{_mb(tick.file_total_bytes)} MB"


def export_stages(dtype: str) -> list[str]:
    """The stages an export reports, in order (fp32 has no quantize stage)."""
    middle = ["load", "export"] if dtype == "fp32" else ["load", "export", "quantize"]
    return ["download", "resolve", *middle, "validate", "done"]


def describe_export(model: ModelInfo, active: bool) -> str:
    """The finished export: its size and the quality measured against the original."""
    from pgpt.export.cli import quality_line

    kind = {"llm": "a chat model", "embedding": "an embedding model"}.get(model.kind, f"a {model.kind} model")
    then = "it is now the chat model (the chat is loading it)" if active else kind
    return (f"{model.name} is ready ({model.dtype}, {model.size_bytes / 1e6:.0f} MB): "
            f"{quality_line(model.manifest)}; {then}.")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f}"
