"""Protocol and CSV parsing shared by the manifests, score files and own-folder corpora: rows with
their line numbers, and problems quoted as 'file:line: reason'."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from xlsr_helpers.core.errors import ManifestError
from xlsr_helpers.core.textfile import open_text, read_lines

MAX_LISTED = 20  # problems quoted in an error message; the rest are counted


def raise_problems(problems: list[str], what: str, error: type[Exception] = ManifestError) -> None:
    """Raise one error quoting the first problems (each 'file:line: reason') and counting the rest."""
    if problems:
        shown = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise error(f"{len(problems)} {what}:\n  {shown}{more}")


def parse_whitespace(path: Path, columns: list[str]) -> tuple[list[dict], list[str], list[int]]:
    rows, problems, line_numbers = [], [], []
    for lineno, line in enumerate(read_lines(path), 1):
        parts = line.split()
        if not parts:
            continue  # blank lines are not trials
        if len(parts) != len(columns):
            problems.append(f"{path}:{lineno}: expected {len(columns)} columns, found {len(parts)}: {line.strip()[:80]!r}")
            continue
        rows.append(dict(zip(columns, parts, strict=True)))
        line_numbers.append(lineno)
    return rows, problems, line_numbers


def parse_csv(path: Path, colmap: dict[str, str]) -> tuple[list[dict], list[str], list[int]]:
    rows, problems, line_numbers = [], [], []
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        absent = [c for c in colmap if c not in header]
        if absent:
            raise ManifestError(f"{path}:1: header {header} lacks column(s) {absent}")
        for rec in reader:
            lineno = reader.line_num
            if None in rec or any(rec[c] is None for c in colmap):
                problems.append(f"{path}:{lineno}: wrong number of fields: {rec}")
                continue
            rows.append({colmap[c]: rec[c].strip() for c in colmap})
            line_numbers.append(lineno)
    return rows, problems, line_numbers


def safe_id(text: str) -> str:
    """An id that survives the ASVspoof ``utt_id score`` format: no whitespace inside."""
    return re.sub(r"\s+", "_", text.strip()) or "_"
