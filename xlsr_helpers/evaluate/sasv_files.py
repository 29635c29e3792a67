"""ASVspoof 5 track 2 (SASV) score and key files, read as strictly as ``scorefile`` reads track 1.

The evaluation package's files (``evaluation-package/README.md``, ``util.py``): a header line names the
columns, whitespace (the package: tabs) between them, trials identified by (spk, filename); full keys
name the first two ``tar_spk_anon`` and ``trial_anon``. Every bad line is named with its file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xlsr_helpers.core.textfile import read_lines
from xlsr_helpers.data.manifest import raise_problems
from xlsr_helpers.evaluate.scorefile import ScoreFileError, parse_score

SASV_ALIASES = {"tar_spk_anon": "spk", "trial_anon": "filename"}
SASV_SCORES = ("spk", "filename", "cm-score", "asv-score", "sasv-score")
SASV_KEYS = ("spk", "filename", "cm-label", "asv-label")
SASV_LABELS = {"cm-label": ("bonafide", "spoof"), "asv-label": ("target", "nontarget", "spoof")}


def is_sasv_score_file(path: str | Path) -> bool:
    """A track-2 score file: its first line is a header that starts with ``spk`` or names ``sasv-score``
    (a track-1 line starts with an utterance id)."""
    first = next((ln.split() for ln in read_lines(path) if ln.strip()), [])
    return bool(first) and (SASV_ALIASES.get(first[0], first[0]) == "spk" or "sasv-score" in first)


def _sasv_rows(path: Path, required: tuple[str, ...], exact: bool) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line, {column: field}) of each trial of a track-2 table whose header names ``required`` (``exact``:
    and nothing else), and the problems: column counts, a (spk, filename) pair given twice."""
    rows = [(n, line.split()) for n, line in enumerate(read_lines(path), 1) if line.strip()]
    head_line, head = rows[0] if rows else (1, [])
    names = [SASV_ALIASES.get(f, f) for f in head]
    missing = [c for c in required if c not in names]
    extra = [f for f, n in zip(head, names, strict=True) if n not in required] if exact else []
    twice = sorted({n for n in names if names.count(n) > 1})
    if missing or extra or twice:
        found = (f"missing {missing}" if missing else "") + (f" unknown {extra}" if extra else "") \
            + (f" given twice {twice}" if twice else "")
        raise ScoreFileError(f"{path}:{head_line}: header {' '.join(head)!r}: {found.strip()}; expected a header "
                             f"line naming {' '.join(required)}{'' if exact else ' (other columns allowed)'}")
    trials, problems, first = [], [], {}
    for lineno, parts in rows[1:]:
        if len(parts) != len(names):
            problems.append(f"{path}:{lineno}: {len(parts)} columns; the header names {len(names)}")
            continue
        row = dict(zip(names, parts, strict=True))
        pair = (row["spk"], row["filename"])
        if pair in first:
            problems.append(f"{path}:{lineno}: duplicate trial {pair[0]} {pair[1]} (first on line {first[pair]})")
            continue
        first[pair] = lineno
        trials.append((lineno, row))
    if not rows[1:]:
        raise ScoreFileError(f"{path}: no trials after the header line")
    return trials, problems


def read_sasv_scores(path: str | Path) -> pd.DataFrame:
    """A track-2 score file (header ``spk filename cm-score asv-score sasv-score``, any order) -> spk,
    filename, cm_score, asv_score, sasv_score. cm-score and asv-score are ``-`` on every line (a system
    without them: NaN) or a number on every line."""
    path = Path(path)
    trials, problems = _sasv_rows(path, SASV_SCORES, exact=True)
    dashes: dict[str, list[int]] = {"cm-score": [], "asv-score": []}
    for lineno, row in trials:
        for c in SASV_SCORES[2:]:
            if c in dashes and row[c] == "-":
                dashes[c].append(lineno)
                row[c] = np.nan
                continue
            row[c], why = parse_score(row[c])
            problems += [f"{path}:{lineno}: {c}: {why}"] if why else []
    for c, lines in dashes.items():
        if 0 < len(lines) < len(trials):
            problems.append(f"{path}:{lines[0]}: {c} is '-' on {len(lines)} of {len(trials)} lines: give a number "
                            "on every line, or '-' on every line")
    raise_problems(problems, f"bad line(s) in track-2 score file {path.name}", ScoreFileError)
    return pd.DataFrame([row for _, row in trials], columns=list(SASV_SCORES)).rename(columns=lambda c: c.replace("-", "_"))


def read_sasv_keys(path: str | Path) -> pd.DataFrame:
    """A track-2 key file (header ``spk filename cm-label asv-label``, other columns allowed) -> spk,
    filename, cm_label, asv_label; a spoof is spoof in both labels (the metrics read one or the other)."""
    path = Path(path)
    trials, problems = _sasv_rows(path, SASV_KEYS, exact=False)
    for lineno, row in trials:
        bad = [f"{c} {row[c]!r} (expected {' or '.join(ok)})" for c, ok in SASV_LABELS.items() if row[c] not in ok]
        if bad:
            problems.append(f"{path}:{lineno}: unknown " + ", ".join(bad))
        elif (row["cm-label"] == "spoof") != (row["asv-label"] == "spoof"):
            problems.append(f"{path}:{lineno}: cm-label {row['cm-label']} with asv-label {row['asv-label']}: a trial "
                            "is spoof in both or in neither")
    raise_problems(problems, f"bad line(s) in track-2 key file {path.name}", ScoreFileError)
    return pd.DataFrame([row for _, row in trials])[list(SASV_KEYS)].rename(columns=lambda c: c.replace("-", "_"))


def join_sasv(scores: pd.DataFrame, keys: pd.DataFrame, score_name: str = "score file",
              key_name: str = "key file") -> pd.DataFrame:
    """Track-2 scores with their labels, trial by trial (spk, filename); raise listing unknown trials and
    trials without a score, as the package refuses files whose trials differ."""
    merged = keys.merge(scores, on=["spk", "filename"], how="outer", indicator=True)
    trial = merged.spk + " " + merged.filename
    unknown, unscored = (trial[merged._merge == side].tolist() for side in ("right_only", "left_only"))
    problems = [f"{len(p)} trial(s) {what}: {p[:5]}" for p, what in (
        (unknown, f"in the {score_name} are not in the {key_name}"),
        (unscored, f"of the {key_name} have no score in the {score_name}")) if p]
    if problems:
        raise ScoreFileError("; ".join(problems))
    return merged.drop(columns="_merge")
