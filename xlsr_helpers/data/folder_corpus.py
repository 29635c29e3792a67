"""A user's own corpus (``format: folder``): ``labels.csv`` at the root, or one folder per label.

Nothing under the root is dropped silently. In the label-folder layout a folder holding audio that
is not a label folder (``spoofed/``, ``other/``) and audio outside the label folders are errors that
name them: that audio has no label, and leaving it out could lose half a corpus. What is not audio (other extensions,
hidden files and folders) is listed as ignored, with its reason, next to the manifests; with a
``labels.csv``, so is audio under the root that the CSV does not list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xlsr_helpers.core.errors import ManifestError
from xlsr_helpers.data.protocol import MAX_LISTED, parse_csv, raise_problems, safe_id


@dataclass
class FolderRows:
    """The trials found (``rel_path``, ``label``, ``utt_id``), their line numbers in the listing
    (``labels.csv``'s, or 1..n), what was read, and every file or folder left out with its reason."""

    rows: list[dict]
    lines: list[int]
    listing: Path
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path relative to the root, reason)


def path_id(rel: str) -> str:
    """The id of a file listed by path (own data): the path without its extension, whitespace as '_'."""
    return safe_id(Path(rel).with_suffix("").as_posix())


def _audio_under(root: Path, exts: set[str]) -> list[str]:
    return sorted(f.relative_to(root).as_posix() for f in root.rglob("*") if f.is_file() and f.suffix.lower() in exts)


def folder_rows(root: Path, desc: dict) -> FolderRows:
    """Rows of a user's own data: ``labels.csv`` (path,label) or label folders (any depth)."""
    csv_path = root / desc["csv_name"]
    exts = {e.lower() for e in desc["extensions"]}
    if csv_path.is_file():
        rows, problems, lines = parse_csv(csv_path, {"path": "rel_path", "label": "label"})
        raise_problems(problems, f"bad line(s) in {csv_path.name}")
        for r in rows:
            r["utt_id"] = path_id(r["rel_path"])
        listed = {Path(r["rel_path"]).as_posix() for r in rows}
        unlisted = [(rel, f"audio not listed in {csv_path.name}") for rel in _audio_under(root, exts) if rel not in listed]
        return FolderRows(rows, lines, csv_path, unlisted)
    label_map = desc["label_map"]
    label_dirs, ignored = _top_level(root, label_map, exts, csv_path.name)
    rows = []
    for d in label_dirs:
        for f in sorted(d.rglob("*")):
            if not f.is_file():
                continue
            rel = f.relative_to(root).as_posix()
            if f.suffix.lower() in exts:
                rows.append({"rel_path": rel, "label": d.name.lower(), "utt_id": path_id(rel)})
            else:
                ignored.append((rel, f"not audio ({f.suffix or 'no extension'}; audio is {sorted(exts)})"))
    return FolderRows(rows, list(range(1, len(rows) + 1)), root, ignored)


def _top_level(root: Path, label_map: dict, exts: set[str], csv_name: str) -> tuple[list[Path], list[tuple[str, str]]]:
    """The label folders, and what else lies at the root: other folders holding audio, and audio
    files, are an error (their audio has no label); hidden entries, other files and folders without
    audio are ignored, each with its reason."""
    label_dirs, unknown, loose, ignored = [], [], [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            ignored.append((entry.name + ("/" if entry.is_dir() else ""), "hidden"))
        elif entry.is_dir() and entry.name.lower() in label_map:
            label_dirs.append(entry)
        elif entry.is_dir():
            n_audio = len(_audio_under(entry, exts))
            if n_audio:
                unknown.append(f"{entry.name}/ ({n_audio} audio)")
            else:
                ignored.append((entry.name + "/", "not a label folder, holds no audio"))
        elif entry.suffix.lower() in exts:
            loose.append(entry.name)
        else:
            ignored.append((entry.name, f"not audio, outside the label folders ({entry.suffix or 'no extension'})"))
    labels = sorted(label_map)
    if not label_dirs and not unknown:
        raise ManifestError(f"{root}: no {csv_name} and no label folders ({labels})")
    problems = []
    if unknown:
        problems.append(f"folder(s) {_listed(unknown)} hold audio but are not label folders")
    if loose:
        problems.append(f"{len(loose)} audio file(s) lie outside the label folders: {_listed(loose)}")
    if problems:
        raise ManifestError(f"{root}: {'; '.join(problems)}; label folders are {labels} (any case): rename or "
                            f"move the rest, or give every file its label in {csv_name} (path,label)")
    return label_dirs, ignored


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more
