"""The record of what this project wrote into a run folder (``RUN/.xlsr-written``, one path a line,
relative to the folder, appended as each is written). Clearing removes exactly what it lists; a
file it does not list is never overwritten or removed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from xlsr_helpers.core.errors import RunFolderError

WRITTEN = ".xlsr-written"


def _entry(run_dir: Path, path: str | Path, folder: bool = False) -> str:
    """``path`` relative to ``run_dir`` as the record spells it; folders end in ``/``."""
    p = Path(path) if Path(path).is_absolute() else Path(run_dir) / path
    rel = os.path.relpath(os.path.normpath(p.absolute()), os.path.normpath(Path(run_dir).absolute()))
    if rel == "." or rel.startswith(".."):
        raise ValueError(f"{p} is not inside the run folder {run_dir}")
    return PurePosixPath(Path(rel).as_posix()).as_posix() + ("/" if folder else "")


def written(run_dir: Path) -> set[str]:
    """Every path the record lists (folders with a trailing ``/``)."""
    record = Path(run_dir) / WRITTEN
    return {line for line in record.read_text().splitlines() if line} if record.is_file() else set()


def note_written(run_dir: Path, *paths: str | Path) -> None:
    """Add paths (files, or folders: those that are folders on disk) to the record, once each."""
    known = written(run_dir)
    new = [e for e in dict.fromkeys(_entry(run_dir, p, Path(p).is_dir()) for p in paths) if e not in known]
    if new:
        with open(Path(run_dir) / WRITTEN, "a", encoding="utf-8") as f:
            f.write("".join(f"{e}\n" for e in new))


def not_written(run_dir: Path, paths: Iterable[Path]) -> list[Path]:
    """Those of ``paths`` that exist although the record does not list them (a user's files)."""
    known = written(run_dir)
    return [p for p in paths if (p.exists() or p.is_symlink()) and _entry(run_dir, p, p.is_dir()) not in known]


def claim(run_dir: Path, path: str | Path) -> Path:
    """Make ``path`` ready to be written: refuse when a file this project did not write is there,
    make its folders, and note it (and each folder made for it) in the record."""
    run_dir = Path(run_dir).absolute()
    p = Path(path) if Path(path).is_absolute() else run_dir / path
    if not_written(run_dir, [p]):
        raise RunFolderError(f"{p} was not written by xlsr (it is not listed in {Path(run_dir) / WRITTEN}); "
                             "move it out of the run folder, or give another run folder")
    made = [a for a in reversed(p.parents) if a.is_relative_to(run_dir) and a != run_dir and not a.exists()]
    p.parent.mkdir(parents=True, exist_ok=True)
    note_written(run_dir, *made, p)
    return p


def _inside(run_dir: Path, p: Path) -> bool:
    # through a link a listed path could point anywhere: only what really lies in the folder goes
    return p.parent.resolve().is_relative_to(Path(run_dir).resolve())


def remove_written(run_dir: Path, names: Iterable[str]) -> list[Path]:
    """Remove what the record lists at or under each name (``metrics.json``, ``scores``): listed files,
    then listed folders that are empty; anything else there stays. Returns what was removed."""
    run_dir = Path(run_dir)
    prefixes = [n.strip("/") for n in names]
    known = written(run_dir)
    hits = sorted((e for e in known if any(e.rstrip("/") == n or e.startswith(n + "/") for n in prefixes)
                   and ".." not in PurePosixPath(e).parts and not PurePosixPath(e).is_absolute()),
                  key=lambda e: (e.endswith("/"), -e.count("/")))  # files first, then the deepest folders
    removed, gone = [], set()
    for e in hits:
        p = run_dir / e.rstrip("/")
        if not (p.exists() or p.is_symlink()):
            gone.add(e)
        elif not _inside(run_dir, p):
            continue
        elif not e.endswith("/") and not p.is_dir():
            p.unlink()
            removed.append(p)
            gone.add(e)
        elif e.endswith("/") and p.is_dir() and not p.is_symlink() and not any(p.iterdir()):
            p.rmdir()
            removed.append(p)
            gone.add(e)
    if gone:
        _rewrite(run_dir, [e for e in _ordered(run_dir) if e not in gone])
    return removed


def _ordered(run_dir: Path) -> list[str]:
    record = run_dir / WRITTEN
    return list(dict.fromkeys(line for line in record.read_text().splitlines() if line)) if record.is_file() else []


def _rewrite(run_dir: Path, entries: list[str]) -> None:
    tmp = run_dir / f"{WRITTEN}.tmp"
    tmp.write_text("".join(f"{e}\n" for e in entries), encoding="utf-8")
    os.replace(tmp, run_dir / WRITTEN)
