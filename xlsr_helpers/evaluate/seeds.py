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
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from xlsr_helpers.core.errors import ConfigError

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
    out.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        link, target = out / name, run_dir / name
        if target.exists() and not link.exists():
            os.symlink(os.path.relpath(target, out), link, target_is_directory=True)
    return out


def clear_summary(run_dir: Path) -> None:
    """The summary describes the seeds' detectors: it goes before any of them may change."""
    for name in SUMMARY_FILES:
        p = run_dir / SEEDS_DIR / name
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


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
        write_scores(fused, out / f"{split}.csv", out / f"{split}.txt")
        seed_rows = [_row(split, name, r) for name, r in per_seed]
        stats = pd.DataFrame(seed_rows)[list(METRICS)].astype(float)
        rows += [*seed_rows, {"split": split, "system": "mean", **stats.mean().to_dict()},
                 {"split": split, "system": "sd", **stats.std(ddof=1).to_dict()},  # n - 1, as papers report it
                 _row(split, "fused", evaluate_scores(fused, asv, phase))]
    table = pd.DataFrame(rows)
    (run_dir / SEEDS_DIR).mkdir(parents=True, exist_ok=True)
    table.to_csv(run_dir / SEEDS_DIR / "summary.csv", index=False)
    (run_dir / SEEDS_DIR / "summary.json").write_text(json.dumps(
        {"seeds": seeds, "phase": phase, "rows": table.replace({np.nan: None}).to_dict("records")}, indent=2))
    return table
