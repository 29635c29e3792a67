"""Where a command writes, checked before any work: an output that cannot be written must not cost
hours of training or scoring first (it would fail at the end)."""

from __future__ import annotations

import os
from pathlib import Path

from xlsr_helpers.core.errors import ConfigError, short_text


def _nearest_existing(p: Path) -> Path | None:
    return next((a for a in (p, *p.parents) if a.exists()), None)


def _writable(folder: Path) -> bool:
    """A folder one may create files in (``os.access`` also sees a read-only file system, as root too)."""
    return os.access(folder, os.W_OK | os.X_OK)


def check_output_folder(path: str | Path, option: str) -> None:
    """A folder the command writes into (made if missing): refused when it is a file, lies below a file,
    or cannot be written (a read-only folder or file system, e.g. /kaggle/input)."""
    p = Path(path).expanduser()
    where = f"{option} {short_text(p, 200)}"
    try:
        base = _nearest_existing(p)
    except OSError as exc:  # a name too long for the file system
        raise ConfigError(f"{where}: {exc.strerror}") from None
    if base == p and not p.is_dir():
        raise ConfigError(f"{where} is a file; give a folder")
    if base is not None and not base.is_dir():
        raise ConfigError(f"{where}: {base} is a file, not a folder")
    if base is not None and not _writable(base):
        raise ConfigError(f"{where}: {base} is not writable (a read-only folder or file system); "
                          "give a folder you can write to")


def check_output_file(path: str | Path | None, option: str) -> None:
    """A file the command writes at the end: refused when it is a folder, lies below a file, is a
    read-only file or its folder cannot be written."""
    if path is None:
        return
    p = Path(path).expanduser()
    if p.is_dir():
        raise ConfigError(f"{option} {p} is a folder; give a file name, e.g. {p / 'scores.csv'}")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{option} {p} is a read-only file; give another name or make it writable")
    parent = _nearest_existing(p.parent)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"{option} {p}: {parent} is a file, not a folder")
    if parent is not None and not _writable(parent):
        raise ConfigError(f"{option} {p}: {parent} is not writable")
