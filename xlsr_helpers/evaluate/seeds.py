"""Several seeds, one answer: stages 2-4 once per seed in one run folder, then a summary table
(EER / min t-DCF per seed, mean and sd) and the fused system (per-trial mean of the seeds' scores).

Layout: ``RUN/seeds/seed-<n>/`` is a run folder of its own for notebooks 03 and 04, whose
``manifests``, ``stage1`` (and ``demo_data``) are links to the shared ones in ``RUN``; the summary
goes to ``RUN/seeds/summary.csv``, ``summary.json``, ``seeds.png`` and the fused scores to
``RUN/seeds/fused/<split>.csv|txt``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from xlsr_helpers.core.errors import ConfigError, RunFolderError
from xlsr_helpers.core.written import WRITTEN, claim, not_written, note_written, remove_written

SHARED = ("manifests", "stage1", "demo_data", "tiny-random-wav2vec2")  # what every seed reuses from RUN
SEEDS_DIR = "seeds"
SUMMARY_FILES = ("summary.csv", "summary.json", "seeds.png", "fused")


def parse_seeds(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3]: at least two distinct non-negative integers."""
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers, e.g. 1,2,3") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r}: expected at least two distinct non-negative integers")
    return seeds


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / SEEDS_DIR / f"seed-{seed}"


def prepare_seed_dir(run_dir: Path, seed: int) -> Path:
    """The seed's run folder, linked to the shared outputs of notebooks 01-02."""
    out = seed_dir(run_dir, seed)
    made = [p for p in (out.parent, out) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    note_written(run_dir, *made)
    for name in SHARED:
        link, target = out / name, run_dir / name
        if target.exists() and not link.exists():
            os.symlink(os.path.relpath(target, out), link, target_is_directory=True)
    return out


def clear_summary(run_dir: Path) -> list[Path]:
    """The summary describes the seeds' detectors: it goes before any of them may change. Only what the
    run folder's record lists goes; a file the project did not write where the summary goes is refused."""
    removed = remove_written(run_dir, [f"{SEEDS_DIR}/{name}" for name in SUMMARY_FILES])
    splits = sorted(p.stem for p in (run_dir / "manifests").glob("*.csv"))
    targets = [run_dir / SEEDS_DIR / n for n in SUMMARY_FILES if n != "fused"]
    foreign = not_written(run_dir, targets + [run_dir / SEEDS_DIR / "fused" / f"{s}.{ext}" for s in splits
                                              for ext in ("csv", "txt")])
    if foreign:
        raise RunFolderError(f"{', '.join(map(str, foreign))}: not written by xlsr (not listed in {run_dir / WRITTEN}), "
                             "and the seeds' summary would overwrite it; move it out of the run folder")
    return removed


def seed_scores(run_dir: Path, seeds: list[int], split: str) -> list[pd.DataFrame]:
    frames = []
    for s in seeds:
        path = seed_dir(run_dir, s) / "scores" / f"{split}.csv"
        if not path.is_file():
            raise ConfigError(f"{path} is missing: notebook 04 did not finish for seed {s}")
        frames.append(pd.read_csv(path, keep_default_na=False, dtype={"utt_id": str}))
    return frames


def fuse(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The first seed's table with ``score`` replaced by the per-trial mean over the seeds (same trials
    required), ``llr``/``p_spoof``/``label_pred`` dropped (each seed's calibration differs)."""
    ids = frames[0].utt_id.tolist()
    for i, f in enumerate(frames[1:], 2):
        if sorted(f.utt_id) != sorted(ids):
            raise ConfigError(f"seed {i}'s scores cover other trials than seed 1's; score the same manifests")
    scores = np.mean([f.set_index("utt_id").loc[ids, "score"].to_numpy(dtype=float) for f in frames], axis=0)
    fused = frames[0].drop(columns=[c for c in ("llr", "p_spoof", "label_pred") if c in frames[0]]).copy()
    fused["score"] = scores
    return fused


METRICS = {"EER (%)": lambda r: 100 * r["eer"], "min t-DCF": lambda r: r.get("min_tdcf"),
           "min DCF": lambda r: r["min_dcf"]}


def _row(split: str, system: str, result: dict) -> dict:
    return {"split": split, "system": system, **{k: f(result) for k, f in METRICS.items()}}


def summarize(run_dir: Path, seeds: list[int], asv_for_split, phase: str = "eval") -> pd.DataFrame:
    """Per split and system (each seed, mean, sd, fused): EER (%), min t-DCF, min DCF; written as
    ``seeds/summary.csv|json`` with the fused scores. ``asv_for_split(split)`` gives the ASV reference."""
    from xlsr_helpers.evaluate.results import evaluate_scores
    from xlsr_helpers.evaluate.score_output import write_scores
    first = seed_dir(run_dir, seeds[0]) / "scores"
    splits = sorted(p.stem for p in first.glob("*.csv"))
    rows = []
    for split in splits:
        frames = seed_scores(run_dir, seeds, split)
        asv = asv_for_split(split)
        per_seed = [(f"seed {s}", evaluate_scores(f, asv, phase)) for s, f in zip(seeds, frames, strict=True)]
        fused = fuse(frames)
        out = run_dir / SEEDS_DIR / "fused"
        write_scores(fused, claim(run_dir, out / f"{split}.csv"), claim(run_dir, out / f"{split}.txt"))
        seed_rows = [_row(split, name, r) for name, r in per_seed]
        stats = pd.DataFrame(seed_rows)[list(METRICS)].astype(float)
        rows += [*seed_rows, {"split": split, "system": "mean", **stats.mean().to_dict()},
                 {"split": split, "system": "sd", **stats.std(ddof=1).to_dict()},  # n - 1, as papers report it
                 _row(split, "fused", evaluate_scores(fused, asv, phase))]
    table = pd.DataFrame(rows)
    table.to_csv(claim(run_dir, run_dir / SEEDS_DIR / "summary.csv"), index=False)
    claim(run_dir, run_dir / SEEDS_DIR / "summary.json").write_text(json.dumps(
        {"seeds": seeds, "phase": phase, "rows": table.replace({np.nan: None}).to_dict("records")}, indent=2))
    return table
