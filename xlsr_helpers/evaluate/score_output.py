"""Score files on disk: the CSV (every row), the ASVspoof ``utt_id score`` file (scored rows) and,
when asked, the window scores (one row per scoring window of each scored file).

``score_into`` appends each finished chunk of rows as it comes, so a run that stops (an error,
Ctrl-C, a killed process) keeps every row it finished; rows of files it never reached say so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xlsr_helpers.core.errors import FREE_ADVICE, ConfigError, disk_full_named, failure_reason
from xlsr_helpers.core.outputs import check_output_file  # noqa: F401 - re-exported: `xlsr score` checks --out with it
from xlsr_helpers.data.audio import SAMPLE_RATE, window_starts
from xlsr_helpers.data.manifest import safe_id

log = logging.getLogger(__name__)
SCORE_COLUMNS = ["utt_id", "path", "score", "llr", "p_spoof", "label_pred", "n_windows", "error"]
RowSink = Callable[[pd.DataFrame], None]
WINDOW_COLUMNS = ["utt_id", "path", "window", "start", "end", "score"]


def windows_path(out: str | Path) -> Path:
    """Where the window scores of the score CSV ``out`` go: beside it, ``scores.csv`` -> ``scores.windows.csv``."""
    out = Path(out)
    return out.with_name(f"{out.stem if out.suffix == '.csv' else out.name}.windows.csv")


def window_table(ids: list[str], paths: list[Path], lengths: list[int], scores: list[np.ndarray], window: int,
                 hop: int) -> pd.DataFrame:
    """One row per scoring window: file id and path, window number, start and end in seconds and score.
    The windows are ``audio.window_starts``': every ``hop`` samples, the last flush with the end; a file
    of at most one window is one window, from 0 to its own length."""
    frames = []
    for utt, path, n, s in zip(ids, paths, lengths, scores, strict=True):
        starts = np.asarray(window_starts(n, window, hop))
        frames.append(pd.DataFrame({"utt_id": utt, "path": str(path), "window": np.arange(starts.size),
                                    "start": starts / SAMPLE_RATE, "end": np.minimum(starts + window, n) / SAMPLE_RATE,
                                    "score": s}, columns=WINDOW_COLUMNS))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=WINDOW_COLUMNS)


@dataclass
class ScoreJob:
    """One ``Scorer.score_files`` call: files, their ids, errors known before reading, extra columns."""

    paths: list[Path]
    ids: list[str]
    known_errors: dict[int, str] = field(default_factory=dict)
    extra: pd.DataFrame | None = None  # one row per file, appended after the score columns (a manifest's own)

    @classmethod
    def from_manifest(cls, manifest: pd.DataFrame) -> ScoreJob:
        keep = [c for c in manifest.columns if c not in SCORE_COLUMNS]
        return cls([Path(p) for p in manifest["path"]], manifest["utt_id"].tolist(), {},
                   manifest[keep].reset_index(drop=True))

    def unscored(self, start: int, reason: str) -> pd.DataFrame:
        """Rows for the files from ``start`` on, never scored: their known error, else ``reason``."""
        k = range(start, len(self.paths))
        df = pd.DataFrame({"utt_id": self.ids[start:], "path": [str(p) for p in self.paths[start:]], "score": np.nan,
                           "llr": np.nan, "p_spoof": np.nan, "label_pred": "", "n_windows": 0,
                           "error": [self.known_errors.get(i, reason) for i in k]}, columns=SCORE_COLUMNS)
        if self.extra is not None:
            df = pd.concat([df, self.extra.iloc[start:].reset_index(drop=True)], axis=1)
        return df


def windows_of(scorer, paths: list[str | Path], ids: list[str]) -> pd.DataFrame:
    """The window table of a few files (e.g. ``report.confident_errors``'), scored again with ``scorer``."""
    chunks: list[pd.DataFrame] = []
    scorer.score_files([Path(p) for p in paths], list(ids), progress=False, on_windows=chunks.append)
    chunks = [c for c in chunks if len(c)]  # a chunk whose files all failed has no windows
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=WINDOW_COLUMNS)


def asvspoof_lines(df: pd.DataFrame, asvspoof_path: str | Path) -> str:
    """``utt_id score`` lines of the rows that scored; ids with whitespace are refused (unreadable back)."""
    ok = df[df.error == ""]
    bad = [u for u in ok.utt_id if safe_id(u) != u]
    if bad:
        raise ConfigError(f"ids with whitespace cannot go into the ASVspoof file {asvspoof_path}: {bad[:5]}")
    return "".join(f"{u} {s:.6f}\n" for u, s in zip(ok.utt_id, ok.score, strict=True))


def write_scores(df: pd.DataFrame, csv_path: str | Path, asvspoof_path: str | Path | None = None) -> None:
    """The full CSV, plus an ASVspoof score file (``utt_id score``) of the files that scored; each
    file replaced whole (written aside, then renamed), so a reader never sees half of one. A full disk
    is one line naming the file and how much it needs."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    _replace_whole(csv_path, df.to_csv(index=False))
    if asvspoof_path is not None:
        lines = asvspoof_lines(df, asvspoof_path)
        asv = Path(asvspoof_path)
        asv.parent.mkdir(parents=True, exist_ok=True)
        _replace_whole(asv, lines)


def _replace_whole(path: Path, text: str) -> None:
    """``path`` holds ``text``: written aside, then renamed; on a full disk the part written goes."""
    tmp = path.with_name(path.name + ".partial")
    try:
        with disk_full_named(path.parent, len(text.encode()), FREE_ADVICE):  # says how much the file needs
            tmp.write_text(text, encoding="utf-8")
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


class ScoreWriter:
    """Appends rows to the CSV (and their scores to the ASVspoof file) as they finish."""

    def __init__(self, csv_path: str | Path, asvspoof_path: str | Path | None, columns: list[str]):
        self.csv_path, self.columns, self.rows = Path(csv_path), columns, 0
        self.asvspoof_path = Path(asvspoof_path) if asvspoof_path is not None else None
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with disk_full_named(self.csv_path.parent, advice=FREE_ADVICE):  # an older run's rows go at once
            self.csv_path.write_text(pd.DataFrame(columns=columns).to_csv(index=False), encoding="utf-8")
        if self.asvspoof_path is not None:
            self.asvspoof_path.parent.mkdir(parents=True, exist_ok=True)
            with disk_full_named(self.asvspoof_path.parent, advice=FREE_ADVICE):
                self.asvspoof_path.write_text("", encoding="utf-8")

    def add(self, df: pd.DataFrame) -> None:
        lines = asvspoof_lines(df, self.asvspoof_path) if self.asvspoof_path is not None else ""
        text = df.reindex(columns=self.columns).to_csv(header=False, index=False)
        with disk_full_named(self.csv_path.parent, len(text.encode()), FREE_ADVICE):  # names the file on a full disk
            with open(self.csv_path, "a", encoding="utf-8") as f:
                f.write(text)
            if lines:
                with open(self.asvspoof_path, "a", encoding="utf-8") as f:
                    f.write(lines)
        self.rows += len(df)


def score_into(scorer, jobs: list[ScoreJob], csv_path: str | Path, asvspoof_path: str | Path | None = None,
               write: bool = True, progress: bool = True, windows: str | Path | None = None) -> pd.DataFrame:
    """Score the jobs in order with ``scorer`` (a ``Scorer``), writing rows as they finish.

    If scoring stops, the files not reached get rows saying so, the finished rows stay and the
    exception goes on. When all is done both files are rewritten whole (as ``write_scores``).
    ``write=False`` (the other processes under torchrun) scores without writing. ``windows``: a CSV
    that gets every scored window's row (``window_table``) as chunks finish; error rows have none."""
    columns = list(dict.fromkeys([*SCORE_COLUMNS, *(c for j in jobs if j.extra is not None for c in j.extra)]))
    writer = ScoreWriter(csv_path, asvspoof_path, columns) if write else None
    per_window = {"on_windows": ScoreWriter(windows, None, WINDOW_COLUMNS).add} if write and windows else {}
    frames = []
    for i, job in enumerate(jobs):
        before = writer.rows if writer else 0
        try:
            frames.append(scorer.score_files(job.paths, job.ids, progress, job.known_errors,
                                             on_rows=writer.add if writer else None, extra=job.extra, **per_window))
        except BaseException as exc:
            if writer is not None:
                _close_unfinished(writer, jobs[i:], writer.rows - before, exc)
            raise
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    if write:
        write_scores(df, csv_path, asvspoof_path)
    return df


def _close_unfinished(writer: ScoreWriter, jobs: list[ScoreJob], done: int, exc: BaseException) -> None:
    """Rows for every file not reached (the first job from ``done`` on), then say what is where."""
    reason = f"not scored: scoring stopped before this file ({failure_reason(exc)})"
    finished = writer.rows
    try:
        for j, job in enumerate(jobs):
            writer.add(job.unscored(done if j == 0 else 0, reason))
    except Exception as again:  # noqa: BLE001 - the first failure is the one to report
        log.error("could not add the unscored rows to %s: %s", writer.csv_path, failure_reason(again))
    log.error("scoring stopped (%s): %d finished row(s) kept in %s", failure_reason(exc), finished, writer.csv_path)


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # links and hard links too
    return a.resolve() == b.resolve()


def check_score_outputs(outputs: dict[str, str | Path | None], model_dir: str | Path, inputs: list[str | Path]) -> None:
    """Refuse outputs that would overwrite what the command reads or writes: two options naming one file,
    an output inside the detector folder, or an output that is one of the inputs (a manifest, an audio file)."""
    given = {opt: Path(p).expanduser() for opt, p in outputs.items() if p is not None}
    names = list(given)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if _same(given[a], given[b]):
                raise ConfigError(f"{a} and {b} are the same file {given[a]}: one would overwrite the other; "
                                  "give two file names")
    model = Path(model_dir).expanduser()
    for opt, p in given.items():
        if model.is_dir() and p.resolve().is_relative_to(model.resolve()):
            raise ConfigError(f"{opt} {p} lies inside the detector folder {model}: scores must not be written "
                              "among the detector's files; give a path outside it")
        clash = next((x for x in map(Path, inputs) if _same(p, x.expanduser())), None)
        if clash is not None:
            raise ConfigError(f"{opt} {p} is also an input ({clash}): scoring would overwrite it; give another file name")
