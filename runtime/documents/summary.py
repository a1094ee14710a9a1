"""What an ingest did: the report that the CLI prints (``--json``: its fields), the server returns
and the app shows, and the words it says about stale and gone documents, shared by all three."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pgpt.runtime.documents.records import DocumentRecord
from pgpt.runtime.documents.text_format import TEXT_FORMAT


@dataclass
class IngestReport:
    """The summary printed at the end (``--json`` prints these fields)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)  # their new paths
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path) of each renamed file
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)
    rechunked: list[str] = field(default_factory=list)  # read and chunked again: the index's format changed
    rechunked_from: int = 0  # the index's text format before this run, when it was re-chunked
    gone: list[str] = field(default_factory=list)  # indexed under the paths, file gone, kept (no --prune)
    set_aside: str = ""  # a re-index found the index in use unreadable: the folder it was moved to
    not_pruned: list[tuple[str, int]] = field(default_factory=list)  # (folder found empty or missing, documents kept)
    chunks: int = 0
    embedded: int = 0  # of the chunks, those embedded now (an edited file's unchanged ones, a stopped run's, were not)
    seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        """Chunks embedded per second of the run: counting the chunks whose vectors were kept read
        "252.7 chunks/s" for a one-line edit of a 732-chunk file (t64)."""
        return self.embedded / self.seconds if self.seconds else 0.0

    def found_nothing(self) -> bool:
        """Whether the paths held no file at all (an empty folder; hidden files are left out). Files
        re-chunked for a new text format count: the first ingest after an upgrade said "No files found"."""
        return not (self.added or self.updated or self.renamed or self.unchanged or self.removed
                    or self.skipped or self.failed or self.rechunked)

    def summary(self, forget: str = "--prune forgets") -> str:
        """One line: the counts, chunks and speed (and a note when the index was re-chunked).
        ``forget``: how the gone files are forgotten, the CLI's flag or the app's key."""
        chunks = f"{self.chunks} chunk{'' if self.chunks == 1 else 's'}" + (
            f" ({self.embedded} embedded, the others' vectors kept)" if self.embedded != self.chunks else "")
        line = (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.renamed)} renamed, "
                f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, {len(self.skipped)} skipped, "
                f"{len(self.failed)} failed; {chunks} in {self.seconds:.1f} s")
        if self.embedded >= 100:  # a few chunks after a scan of thousands of unchanged files read "0.1 chunks/s"
            line += f" ({self.chunks_per_s:.1f} chunks embedded/s)"
        if self.rechunked_from:
            older = "an older" if self.rechunked_from < TEXT_FORMAT else "a newer"  # a newer one: after a rollback
            line += (f"; the index was made by {older} pgpt (text format {self.rechunked_from}), so its "
                     f"{len(self.rechunked)} documents were read and chunked again (format {TEXT_FORMAT})")
        if self.set_aside:
            line += (f"; the index in use could not be read (damaged), so none of its documents came along: only "
                     f"the paths given are indexed now. The damaged table was moved to {self.set_aside} (its "
                     "earlier versions may still be readable there); ingest its folders again to get them back")
        if self.gone:
            line += gone_note(len(self.gone), forget)
        for root, count in self.not_pruned:
            line += not_pruned_note(root, count)
        return line


STALE = " (its version indexed earlier still answers: `pgpt-tui forget PATH`, or Delete in F4, forgets it)"


def mark_stale(report: IngestReport, known: dict[str, DocumentRecord]) -> None:
    """Say it of a skipped or failed file whose earlier version is indexed: emptied, cut short by a
    sync or grown past the size limit, it was "skipped" while its old text went on answering (t47)."""
    for entries in (report.skipped, report.failed):  # a file named as typed ("docs/a.txt"): made absolute,
        # its links not followed (a link skipped as "read there, once" is not the file it leads to)
        entries[:] = [(path, reason + STALE if os.path.abspath(path) in known else reason) for path, reason in entries]


def gone_note(count: int, forget: str = "--prune forgets") -> str:
    """The summary's note on ``count`` indexed files under the paths whose files are gone (kept
    without --prune, so they still answer); a server's ingest and the app say it in the same words,
    ``forget`` naming the way to forget them (the CLI's flag, the app's key)."""
    one = count == 1
    return (f"; {count} indexed {'file' if one else 'files'} under these paths "
            f"{'is gone but still answers' if one else 'are gone but still answer'} ({forget} "
            f"{'it' if one else 'them'})")


def not_pruned_note(root: str, count: int) -> str:
    """The summary's note on a folder that --prune found empty or missing and left alone."""
    from pgpt.runtime.sanitize import one_line

    documents = f"{count} indexed document{'' if count == 1 else 's'}"
    return (f"; NOT pruned: {one_line(root)} is empty or missing, so its {documents} stay (an unmounted share "
            f"or a missing disk looks the same, and --prune would have emptied the index of it). If the folder "
            f"is gone on purpose, forget them with `pgpt-tui forget {one_line(root)}`")
