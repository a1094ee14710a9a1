"""What `pgpt-tui ingest` prints when it ends: the JSON report, or the left-out files, the gone and
removed ones, and the summary line."""

from __future__ import annotations

import argparse
from typing import Any

from pgpt.runtime.sanitize import dumps_json, strip_controls


def print_report(report: Any, args: argparse.Namespace) -> None:
    """The ingest's report on stdout: JSON with ``--json``, else lines and the summary."""
    if args.json:
        fields = ("added", "updated", "renamed", "unchanged", "removed", "gone", "rechunked")
        data = {name: getattr(report, name) for name in fields}
        if report.rechunked_from:
            data["rechunked_from_format"] = report.rechunked_from
        if report.set_aside:
            data["damaged_index_moved_to"] = report.set_aside
        if report.not_pruned:  # folders --prune found empty or missing: their documents stay (exit 1)
            data["not_pruned"] = [{"path": root, "documents": count} for root, count in report.not_pruned]
        # each rename as its two paths: "OLD -> NEW" in one string had to be split on an arrow a name may hold (t50)
        data.update(renamed_documents=[{"from": old, "to": new} for old, new in report.moved],
                    skipped=[{"path": p, "reason": r} for p, r in report.skipped],
                    failed=[{"path": p, "reason": r} for p, r in report.failed],
                    chunks=report.chunks, embedded=report.embedded, seconds=round(report.seconds, 2),
                    chunks_per_s=round(report.chunks_per_s, 1))
        print(dumps_json(data, indent=2))
    else:
        for line in left_out_lines(report.skipped, report.failed):
            print(line)
        # the summary counted them only: which 28 files "still answer", which --prune forgot (tester t42)
        for label, paths in (("gone", report.gone), ("removed", report.removed)):
            for path in paths[:NAMED]:
                print(" ".join(strip_controls(f"{label}: {path}").split()))
            if len(paths) > NAMED:
                print(f"… and {len(paths) - NAMED} more {label} (--json lists them all)")
        if report.found_nothing():
            from pgpt.runtime.documents.discovery import nothing_found

            print(nothing_found(args.paths))
        print(report.summary())


NAMED = 20  # gone or removed files named after an ingest; --json lists every one
GROUPED = 3  # more files than this left out for one same reason share a line


def left_out_lines(skipped: list[tuple[str, str]], failed: list[tuple[str, str]],
                   labels: tuple[str, str] = ("skipped", "failed")) -> list[str]:
    """The report's "skipped:" and "failed:" lines (or ``labels``), one a file, but files left out for
    one same reason share a line when there are more than GROUPED of them, naming the first three: a
    code folder's 27 images, archives and links filled the screen at every ingest (t61). --json lists each one."""
    lines = []
    for label, entries in zip(labels, (skipped, failed)):
        by_reason: dict[str, list[str]] = {}
        for path, reason in entries:
            by_reason.setdefault(reason, []).append(path)
        for reason, paths in by_reason.items():
            if len(paths) > GROUPED:
                shown = ", ".join(paths[:3])
                line = f"{label} {len(paths)} files: {reason}: {shown} and {len(paths) - 3} more (--json lists them)"
                lines.append(line)
            else:
                lines += [f"{label}: {path}: {reason}" for path in paths]
    return [" ".join(strip_controls(line).split()) for line in lines]
