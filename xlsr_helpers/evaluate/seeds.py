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
from xlsr_helpers.data.manifest import read_manifest
from xlsr_helpers.evaluate.results import evaluate_scores
from xlsr_helpers.evaluate.score_output import asvspoof_lines, write_scores
from xlsr_helpers.evaluate.scorefile import read_score_file
from xlsr_helpers.evaluate.table import corpus_row, file_scores

SHARED = ("manifests", "stage1", "demo_data", "tiny-random-wav2vec2")  # what every seed reuses from RUN
SEEDS_DIR = "seeds"
SUMMARY_FILES = ("summary.csv", "summary.json", "seeds.png", "fused", "results_table.csv", "results_table.md")


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
    targets += [p for p in (run_dir / SEEDS_DIR / "fused" / "results").glob("*.txt")]
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


def seed_results(run_dir: Path, seeds: list[int]) -> list[dict]:
    """Each seed's results-table records (``results/table.json`` of notebook 04), by corpus."""
    out = []
    for s in seeds:
        path = seed_dir(run_dir, s) / "results" / "table.json"
        if not path.is_file():
            raise ConfigError(f"{path} is missing: notebook 04 did not finish for seed {s}")
        out.append(json.loads(path.read_text())["rows"])
    corpora = [set(r) for r in out]
    if any(c != corpora[0] for c in corpora):
        raise ConfigError(f"the seeds' results tables cover other corpora ({[sorted(c) for c in corpora]}); "
                          "run 04 with the same eval_datasets for every seed")
    return out


def _fused_row(run_dir: Path, corpus: str, per_seed: list[dict], phase: str, bootstrap: int,
               seed: int) -> dict:
    """The corpus's row for the per-trial mean of the seeds' scores (as written in their score files)."""
    frames = [read_score_file(r[corpus]["scores"]).assign(error="") for r in per_seed]
    fused = fuse(frames)
    path = claim(run_dir, run_dir / SEEDS_DIR / "fused" / "results" / f"{corpus}.txt")
    path.write_text(asvspoof_lines(fused, path))
    first = per_seed[0][corpus]
    asv = {k: Path(v) for k, v in first["asv"].items()} if first.get("asv") else None
    scored = file_scores(path, read_manifest(first["manifest"]))
    return corpus_row(first["dataset"], first["split"], scored, asv, phase, None, None, bootstrap, seed)[0]


def results_summary(run_dir: Path, seeds: list[int], phase: str = "eval", bootstrap: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """Per corpus of the seeds' results tables: each seed's EER and primary metric, their mean and sd,
    and the fused system's row (``seeds/fused/results/<corpus>.txt``); written as
    ``seeds/results_table.csv|md``."""
    per_seed = seed_results(run_dir, seeds)
    keys = ("eer_pct", "primary_value")
    rows = []
    for corpus in per_seed[0]:
        values = [{k: r[corpus][k] for k in keys} for r in per_seed]
        first = per_seed[0][corpus]
        base = {"corpus": corpus, "split": first["split"], "phase": first["phase"], "trials": first["trials"],
                "primary_metric": first["primary_metric"]}
        stats = pd.DataFrame(values).astype(float)
        rows += [{**base, "system": f"seed {s}", **v} for s, v in zip(seeds, values, strict=True)]
        rows += [{**base, "system": "mean", **stats.mean().to_dict()},
                 {**base, "system": "sd", **stats.std(ddof=1).to_dict()}]  # n - 1, as papers report it
        fused = _fused_row(run_dir, corpus, per_seed, phase, bootstrap, seed)
        rows.append({**base, "system": "fused", **{k: fused[k] for k in keys}})
    table = pd.DataFrame(rows, columns=["corpus", "split", "phase", "trials", "system", "eer_pct", "primary_metric",
                                        "primary_value"])
    table.to_csv(claim(run_dir, run_dir / SEEDS_DIR / "results_table.csv"), index=False)
    claim(run_dir, run_dir / SEEDS_DIR / "results_table.md").write_text(_markdown(table))
    return table


def _markdown(table: pd.DataFrame) -> str:
    """Per corpus one line: EER and primary metric as mean +- sd over the seeds, then the fused system's."""
    lines = ["| corpus | split | trials | system | EER (%) | primary metric | value |", "|---|---|---|---|---|---|---|"]
    for corpus, t in table.groupby("corpus", sort=False):
        by = t.set_index("system")
        mean, sd, fused = by.loc["mean"], by.loc["sd"], by.loc["fused"]
        for system, eer, value in ((f"mean +- sd of {len(t) - 3} seeds", f"{mean.eer_pct:.2f} +- {sd.eer_pct:.2f}",
                                    f"{mean.primary_value:.4f} +- {sd.primary_value:.4f}"),
                                   ("fused", f"{fused.eer_pct:.2f}", f"{fused.primary_value:.4f}")):
            lines.append(f"| {corpus} | {mean.split} | {mean.trials} | {system} | {eer} | {mean.primary_metric} | {value} |")
    return "\n".join(lines) + "\n"
