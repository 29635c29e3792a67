"""Notebook 01's steps: manifests written (optionally subsampled), audio checked, durations sampled."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from xlsr_helpers.data.audio import audio_info
from xlsr_helpers.data.corpora import CorpusSet
from xlsr_helpers.data.manifest import ManifestError, ManifestResult, check_audio


def subsample(df: pd.DataFrame, max_trials: int | None, seed: int = 0) -> pd.DataFrame:
    """About ``max_trials`` rows (rounding per group), stratified by corpus x label x attack (each
    corpus keeps its share of the split); every group keeps >= 1 row."""
    if max_trials is None or len(df) <= max_trials:
        return df
    frac = max_trials / len(df)
    strata = [c for c in ("corpus", "label", "attack") if c in df.columns]
    parts = [g.sample(max(1, round(len(g) * frac)), random_state=seed)
             for _, g in df.groupby(strata, sort=True)]
    return pd.concat(parts).sort_index().reset_index(drop=True)


OUTPUTS = ("*.csv", "validation.yaml", "subsample.json")  # what 01 writes into the run folder's manifests/


def write_manifests(result: ManifestResult | CorpusSet, out_dir: Path, max_trials_per_split: int | None = None,
                    seed: int = 0) -> dict[str, pd.DataFrame]:
    """Write the validated manifests (optionally subsampled) and the validation files, in place of
    an earlier run's: a split this corpus lacks (``train.csv`` after a folder corpus) must not stay."""
    for pattern in OUTPUTS:
        for old in Path(out_dir).glob(pattern):
            old.unlink()
    result.write(out_dir)
    splits = {s: subsample(df, max_trials_per_split, seed) for s, df in result.splits.items()}
    for s, df in splits.items():
        df.to_csv(out_dir / f"{s}.csv", index=False)
    if max_trials_per_split is not None:  # counts.csv describes the corpus; say what the CSVs hold
        (out_dir / "subsample.json").write_text(json.dumps(
            {"max_trials_per_split": max_trials_per_split, "seed": seed,
             "rows": {s: {"kept": len(result.splits[s]), "written": len(df)} for s, df in splits.items()}}, indent=2))
    return splits


def audio_check(splits: dict[str, pd.DataFrame], out_dir: Path, enabled: bool) -> pd.DataFrame:
    """``manifest.check_audio`` when enabled (unreadable files raise); an empty table otherwise."""
    if not enabled:
        return pd.DataFrame(columns=["split", "files", "unreadable", "silent", "short", "clipped", "median_s"])
    summary = check_audio(splits, out_dir)
    if summary.unreadable.sum():
        raise ManifestError(f"{int(summary.unreadable.sum())} unreadable audio file(s), listed in "
                            f"{out_dir}/audio_check_<split>.csv")
    return summary


def with_durations(df: pd.DataFrame, n_sample: int | None = 2000, seed: int = 0) -> pd.DataFrame:
    """A sample of rows with ``duration_s`` read from the file headers (no decoding)."""
    d = df if n_sample is None or len(df) <= n_sample else df.sample(n_sample, random_state=seed)
    return d.assign(duration_s=[audio_info(p).duration for p in d.path])
