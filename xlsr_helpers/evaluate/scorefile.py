"""Score files (``utt_id score`` per line), protocols and ASV scores for ``xlsr eer``.

Read strictly: a score is a plain decimal number (no ``1_000``, no NaN, no other digits than
ASCII) and the only number after the id, so a line with two numeric columns is refused, never
guessed. Joining scores with a protocol never ignores anything: unknown ids, trials without a
score and duplicate ids are each listed in the error.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from xlsr_helpers.core.errors import XlsrError
from xlsr_helpers.core.textfile import read_lines
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.data.labels import PHASES
from xlsr_helpers.data.manifest import ManifestError, parse_whitespace, raise_problems
from xlsr_helpers.evaluate.metrics import AsvRates, act_dcf, cllr, eer_from_frame, min_dcf, min_tdcf, per_attack_eer

# Column count of an ASVspoof key file -> descriptor that documents its columns.
PROTOCOL_LAYOUTS = {5: "asvspoof2019-la", 8: "asvspoof2021-la", 10: "asvspoof5", 13: "asvspoof2021-df"}


# A score as C's strtod and every evaluation script reads it: ASCII digits, one point, an exponent.
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+", re.ASCII)


class ScoreFileError(XlsrError, ValueError):
    """A score file that does not match its protocol, with every mismatch named."""


def parse_score(text: str) -> tuple[float | None, str | None]:
    """A score written as a plain decimal number (``-1.25``, ``3e-4``) -> (value, None); otherwise
    (None, why). ``float`` alone would also take ``1_000``, non-ASCII digits and ``nan``."""
    try:
        value = float(text)
    except ValueError:
        return None, f"score {text!r} is not a number"
    plain = PLAIN_NUMBER.fullmatch(text) is not None
    if not np.isfinite(value):
        return None, f"score {text} overflows a 64-bit float" if plain else f"score is {text} (NaN/Inf)"
    if not plain:
        return None, f"score {text!r} is not a plain decimal number (digits, one '.', an optional exponent)"
    return value, None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _score_line(parts: list[str]) -> tuple[float | None, str | None]:
    """The score of one line: the last column; a number among the middle columns makes the line
    ambiguous (which one is the score?), so it is refused rather than guessed."""
    if len(parts) < 2:
        return None, f"expected 'utt_id score', found {' '.join(parts)!r}" + (
            " (a CSV? give the --asvspoof-out file of `xlsr score`)" if "," in parts[0] else "")
    numeric = [p for p in parts[1:] if _is_number(p)]
    if len(numeric) > 1:
        return None, (f"{len(numeric)} numeric columns {numeric}: which one is the score is ambiguous; expected "
                      "'utt_id score' (text-only middle columns, e.g. 'utt_id attack key score', are allowed)")
    if numeric and numeric[0] != parts[-1]:
        return None, f"the score must be the last column; found {parts[-1]!r} after the number {numeric[0]!r}"
    if DECIMAL_COMMA.fullmatch(parts[-1]):  # never a number to float(): always refused, with the fix
        return None, f"score {parts[-1]!r} is not a number (a decimal comma? write {parts[-1].replace(',', '.')})"
    return parse_score(parts[-1])


def read_score_file(path: str | Path) -> pd.DataFrame:
    """Read ``utt_id score`` lines (text middle columns allowed, e.g. ``utt_id attack key score``;
    the score is last, the only number after the id, written as a plain decimal number)."""
    path = Path(path)
    ids, scores, problems, lines = [], [], [], {}
    for lineno, line in enumerate(read_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        s, problem = _score_line(parts)
        if problem:
            problems.append(f"{path}:{lineno}: {problem}")
            continue
        if parts[0] in lines:
            problems.append(f"{path}:{lineno}: duplicate id {parts[0]} (first on line {lines[parts[0]]})")
            continue
        lines[parts[0]] = lineno
        ids.append(parts[0])
        scores.append(s)
    if problems:
        raise_problems(problems, f"bad line(s) in score file {path.name}", ScoreFileError)
    if not ids:
        raise ScoreFileError(f"{path}: no scores found")
    return pd.DataFrame({"utt_id": ids, "score": scores})


def read_protocol(path: str | Path) -> pd.DataFrame:
    """Read an ASVspoof 2019 (5-col) or 2021 LA/DF (8/13-col) key file: utt_id, label, attack."""
    path = Path(path)
    first = next((ln for ln in read_lines(path) if ln.strip()), "")
    n = len(first.split())
    if n not in PROTOCOL_LAYOUTS:
        raise ManifestError(f"{path}:1: {n} columns; expected an ASVspoof key file with {sorted(PROTOCOL_LAYOUTS)} columns")
    desc = load_descriptor(PROTOCOL_LAYOUTS[n])
    rows, problems, linenos = parse_whitespace(path, desc["columns"])
    for r, ln in zip(rows, linenos, strict=True):
        if r["key"] not in desc["label_map"]:
            problems.append(f"{path}:{ln}: unknown label {r['key']!r}")
    raise_problems(problems, f"malformed line(s) in {path.name}")
    df = pd.DataFrame(rows).rename(columns={"key": "label"})
    dup = df["utt_id"].duplicated()
    if dup.any():
        raise ManifestError(f"{path}: {int(dup.sum())} duplicate id(s), e.g. {df.utt_id[dup].head(3).tolist()}")
    keep = ["utt_id", "label", "attack"] + [c for c in ("phase", "codec", "transmission", "source", "vocoder",
                                                         "codec_q") if c in df]
    return df[keep]


def check_phase(phase: str, option: str = "--phase") -> str:
    """A known phase name (the 2021 keys' ``eval``, ``progress``, ``hidden_track``, or ``all``)."""
    if phase not in PHASES:
        raise ScoreFileError(f"{option} {phase!r}: expected one of {list(PHASES)}")
    return phase


def select_phase(df: pd.DataFrame, phase: str = "eval", explicit: bool = False) -> tuple[pd.DataFrame, str]:
    """ASVspoof 2021 results are reported on the ``eval`` phase subset of the keys; score the other
    phases (progress, hidden track) too, but compute the headline metrics on the asked one.
    Returns the rows and a sentence saying what was kept. Keys without a phase column keep every
    trial; a phase asked for ``explicit``ly (not a default) is then refused, as it would select nothing."""
    check_phase(phase)
    if "phase" not in df.columns:
        if explicit and phase != "all":
            raise ScoreFileError(f"--phase {phase}: these keys have no phase column (only the ASVspoof 2021 LA/DF "
                                 "keys have one), so every trial counts; leave --phase out")
        return df, f"all {len(df)} trials"
    if phase == "all":
        return df, f"all {len(df)} trials"
    keep = df["phase"] == phase
    if not keep.any():
        raise ScoreFileError(f"no trials with phase {phase!r}; phases present: {sorted(df.phase.unique())}")
    counts = df["phase"].value_counts().to_dict()
    return df[keep], f"phase {phase!r}: {int(keep.sum())} of {len(df)} trials (all phases: {counts})"


def join_scores(scores: pd.DataFrame, protocol: pd.DataFrame, score_name: str = "score file",
                protocol_name: str = "protocol") -> pd.DataFrame:
    """Scores with their labels; raise listing unknown ids and trials without a score."""
    merged = protocol.merge(scores, on="utt_id", how="outer", indicator=True)
    unknown = merged.loc[merged._merge == "right_only", "utt_id"].tolist()
    unscored = merged.loc[merged._merge == "left_only", "utt_id"].tolist()
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} id(s) in the {score_name} are not in the {protocol_name}: {unknown[:5]}")
    if unscored:
        problems.append(f"{len(unscored)} trial(s) of the {protocol_name} have no score: {unscored[:5]}")
    if problems:
        raise ScoreFileError("; ".join(problems))
    return merged.drop(columns="_merge")


def read_asv_scores(path: str | Path) -> AsvRates:
    """Organisers' ASV scores (``[speaker] source key score``) -> ASV rates at the ASV EER threshold."""
    path = Path(path)
    keys, scores, problems = [], [], []
    for lineno, line in enumerate(read_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3 or parts[-2] not in ("target", "nontarget", "spoof"):
            problems.append(f"{path}:{lineno}: expected '[speaker] source target|nontarget|spoof score'")
            continue
        value, problem = parse_score(parts[-1])
        if problem:
            problems.append(f"{path}:{lineno}: {problem}")
            continue
        scores.append(value)
        keys.append(parts[-2])
    raise_problems(problems, f"bad line(s) in ASV score file {path.name}", ScoreFileError)
    keys, scores = np.array(keys), np.array(scores)
    return AsvRates.from_scores(scores[keys == "target"], scores[keys == "nontarget"], scores[keys == "spoof"])


def _numbered_rows(path: str | Path) -> list[tuple[int, list[str]]]:
    """(line number in the file, fields) of every non-blank line."""
    return [(n, line.split()) for n, line in enumerate(read_lines(path), 1) if line.strip()]


def read_asv_2021(keys_path: str | Path, scores_path: str | Path, phase: str = "eval") -> AsvRates:
    """The 2021 keys' ASV trials (``ASV/trial_metadata.txt``: label in column 6 as target, nontarget
    or spoof, phase in column 8) and the organisers' ASV scores (``ASV/ASVTorch_Kaldi/score.txt``:
    ``speaker trial score``, row by row with the keys) -> ASV rates of one phase (``all``: every
    trial), as the 2021 evaluation package (``eval_wrapper.load_asv_metrics``) computes them."""
    check_phase(phase)
    keys, scores = _numbered_rows(keys_path), _numbered_rows(scores_path)
    problems = [f"{keys_path}:{i}: expected 8 columns (speaker trial codec transmission attack "
                f"target|nontarget|spoof trim phase), found {len(k)}" for i, k in keys
                if len(k) != 8 or k[5] not in ("target", "nontarget", "spoof")]
    values, pairs = [], list(zip(keys, scores, strict=True)) if len(scores) == len(keys) else []
    if len(scores) != len(keys):
        problems.append(f"{scores_path}: {len(scores)} scores for {len(keys)} ASV trials in {keys_path}")
    for (ik, k), (i, s) in pairs:
        if len(s) != 3 or s[1] != k[1]:
            problems.append(f"{scores_path}:{i}: expected 'speaker {k[1]} score' (line {ik} of {keys_path}), "
                            f"found {' '.join(s)!r}")
            continue
        value, problem = parse_score(s[2])
        problems += [f"{scores_path}:{i}: {problem}"] if problem else []
        values.append(value)
    raise_problems(problems, "problem(s) with the 2021 ASV keys/scores", ScoreFileError)
    rows = [(k[5], v) for (_, k), v in zip(keys, values, strict=True) if phase == "all" or k[7] == phase]
    if not rows:
        raise ScoreFileError(f"{keys_path}: no ASV trials of phase {phase!r}")
    label = np.array([r[0] for r in rows])
    value = np.array([r[1] for r in rows])
    return AsvRates.from_scores(value[label == "target"], value[label == "nontarget"], value[label == "spoof"])


TDCF_VERSIONS = ("2019", "2021")


def evaluate(df: pd.DataFrame, asv: AsvRates | None = None, tdcf: tuple[str, ...] = TDCF_VERSIONS) -> dict:
    """EER, min t-DCF (when ASV rates are given: each version in ``tdcf``; ``min_tdcf`` is the first,
    the corpus' official one) and per-attack EER of a scored table."""
    eer, thr = eer_from_frame(df)
    bona, spf = df.score[df.label == "bonafide"].to_numpy(), df.score[df.label == "spoof"].to_numpy()
    out = {"eer": eer, "threshold": thr, "n_bonafide": int(bona.size), "n_spoof": int(spf.size),
           "min_dcf": min_dcf(bona, spf)[0], "act_dcf": act_dcf(bona, spf)[0], "cllr": cllr(bona, spf)}
    if asv is not None:
        for version in tdcf:
            out[f"min_tdcf_{version}"] = min_tdcf(bona, spf, asv, version)[0]
        out["min_tdcf"] = out[f"min_tdcf_{tdcf[0]}"]
    out["per_attack"] = per_attack_eer(df)
    return out


def json_record(res: dict) -> dict:
    """A result of ``evaluate`` as ``metrics.json`` holds each split: the numbers, per-attack EER by attack."""
    rec = {k: v for k, v in res.items() if k != "per_attack"}
    rec["per_attack_eer"] = dict(zip(res["per_attack"].attack, res["per_attack"].eer, strict=True))
    return rec
