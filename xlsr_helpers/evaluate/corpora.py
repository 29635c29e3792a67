"""The corpora notebook 04 evaluates besides the run's own (``eval_datasets``): each on its official
split, its scores kept in ``RUN/results/<corpus>/`` with the record of what they came from.

A corpus's scores are the long part of an evaluation (611k files for 2021 DF), so a later run (the
next Kaggle session) takes them over, but only when every input is what it was: the detector's
files, the scoring settings, the protocol file, the trials and labels, and the audio (content
fingerprints, ``core.fingerprint``). Any difference scores the corpus again. The metrics are never
kept: they are computed again from the score file at every run (``evaluate.table``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from xlsr_helpers.core.errors import ConfigError, XlsrError, short
from xlsr_helpers.core.fingerprint import audio_fingerprint, file_digest, manifest_fingerprint
from xlsr_helpers.core.written import claim, not_written, remove_written, written
from xlsr_helpers.data.corpora import parse_corpora
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.data.manifest import build_manifest, find_root

RESULTS_DIR = "results"
INPUTS = "inputs.json"  # written last, once every file scored: a corpus without it is unfinished
CACHED = ("scores.csv", "scores.txt", INPUTS)  # what outlives one run of 04, while its inputs hold
SCORING_KEYS = ("window", "hop", "aggregation", "batch_size", "sort_by_length", "precision")  # what changes a score
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class EvalCorpus:
    """One entry of ``eval_datasets``: a descriptor (name or .yaml path) and its root ('auto': Kaggle mounts)."""

    dataset: str
    root: str = "auto"


def parse_eval_datasets(text) -> list[EvalCorpus]:
    """``'none'`` -> []; ``'asvspoof2021-la, in-the-wild=/data/itw'`` -> two corpora (root auto for
    the first). Every descriptor is loaded here, so a typo stops 04 before anything is scored."""
    if not isinstance(text, str):
        raise ConfigError(f"parameter eval_datasets={short(text)}: expected text such as 'none' or "
                          "'asvspoof2021-la, in-the-wild=/data/itw'")
    if text.strip() in ("", "none"):
        return []
    corpora, names = [], {}
    for part in text.split(","):
        dataset, eq, root = (s.strip() for s in part.partition("="))
        if not dataset or (eq and not root):
            raise ConfigError(f"parameter eval_datasets={short(text)}: entry {part.strip()!r} is empty; expected "
                              "<dataset> or <dataset>=<root>, separated by commas")
        try:
            name = load_descriptor(dataset)["name"]
        except XlsrError as exc:
            raise ConfigError(f"parameter eval_datasets={short(text)}: {exc}") from None
        if not SAFE_NAME.fullmatch(name):
            raise ConfigError(f"parameter eval_datasets: descriptor name {name!r} cannot name a results folder "
                              "(letters, digits, '.', '_', '-')")
        if name in names:
            raise ConfigError(f"parameter eval_datasets={short(text)}: {name} is listed twice")
        names[name] = dataset
        corpora.append(EvalCorpus(dataset, root or "auto"))
    return corpora


def official_split(desc: dict) -> str:
    """The split a corpus is evaluated on: ``eval`` where it has one (a folder corpus: ``all``)."""
    return next((s for s in ("eval", "all") if s in desc["splits"]), list(desc["splits"])[-1])


@dataclass
class CorpusPlan:
    """A corpus ready to score: its manifest (official split), protocol and results folder."""

    name: str
    dataset: str
    root: Path
    split: str
    manifest: pd.DataFrame
    protocol: Path
    folder: Path


def plan_corpora(corpora: list[EvalCorpus], run_dir: Path, own_dataset: str) -> list[CorpusPlan]:
    """Find every corpus and build its manifest (``results/<corpus>/manifest/``), all before any scoring:
    a missing root or audio file stops 04 now. The run's own corpora are scored from its manifests."""
    specs = parse_corpora(own_dataset)
    own = {s.corpus for s in specs} | {load_descriptor(s.descriptor)["name"] for s in specs}
    plans = []
    for c in corpora:
        desc = load_descriptor(c.dataset)
        if desc["name"] in own:
            raise ConfigError(f"parameter eval_datasets: {desc['name']} is the run's own corpus (dataset), scored from "
                              "the run's manifests and always in the table; leave it out of eval_datasets")
        split = official_split(desc)
        res = build_manifest(c.dataset, find_root(c.dataset, None if c.root == "auto" else c.root), [split])
        folder = Path(run_dir) / RESULTS_DIR / desc["name"]
        out = folder / "manifest"
        for name in (f"{split}.csv", "counts.csv", "validation.yaml", f"ignored_files_{split}.csv"):
            if name.startswith("ignored") and not res.reports[split].ignored:
                continue
            claim(run_dir, out / name)  # refuses a user's file there before writing any
        res.write(out)
        plans.append(CorpusPlan(desc["name"], c.dataset, res.root, split, res.splits[split],
                                Path(res.reports[split].protocol), folder))
    return plans


def detector_identity(detector_dir: str | Path) -> str:
    """The content of a detector folder: every file at its top (weights, config, feature extractor,
    ``xlsr_detector.json``) but its README, by sha256."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(detector_dir).iterdir() if p.is_file() and p.name != "README.md"):
        h.update(f"{f.name}:{file_digest(f)}\n".encode())
    return f"sha256:{h.hexdigest()[:16]}"


def scoring_identity(cfg) -> dict:
    """The resolved scoring settings that change a score (``SCORING_KEYS`` of a ``ScoringConfig``)."""
    return {k: getattr(cfg, k) for k in SCORING_KEYS}


def corpus_inputs(plan: CorpusPlan, detector_id: str, scoring: dict) -> dict:
    """What the corpus's scores are computed from; equal dicts mean the same scores."""
    return {"detector": detector_id, "scoring": scoring, "corpus": plan.name, "split": plan.split,
            "protocol": file_digest(plan.protocol), "trials": manifest_fingerprint(plan.manifest),
            "audio": audio_fingerprint(plan.manifest["path"].tolist(), f"{plan.name} {plan.split}")}


def finished_scores(run_dir: Path, plan: CorpusPlan, inputs: dict) -> Path | None:
    """The corpus's score CSV from an earlier run when it was finished from exactly these inputs
    (and the file is the one it wrote); None otherwise. Changes nothing."""
    record, csv = plan.folder / INPUTS, plan.folder / "scores.csv"
    if not (record.is_file() and csv.is_file()) or not_written(run_dir, [record, csv, plan.folder / "scores.txt"]):
        return None
    try:
        held = json.loads(record.read_text())
    except (ValueError, UnicodeDecodeError):
        return None
    if held.get("inputs") != inputs or held.get("scores") != [file_digest(csv), file_digest(plan.folder / "scores.txt")]:
        return None
    return csv


def score_corpus(scorer, run_dir: Path, plan: CorpusPlan, inputs: dict) -> pd.DataFrame:
    """Score the corpus into ``results/<corpus>/scores.csv|txt`` (rows written as they finish); the inputs
    record goes first and comes back last, only when every file scored."""
    # torch: score_output reads audio with it; the rest of corpora stays torch-free
    from xlsr_helpers.evaluate.score_output import ScoreJob, score_into
    remove_written(run_dir, [f"{RESULTS_DIR}/{plan.name}/{INPUTS}"])  # half-written scores never pass as finished
    csv, txt = (claim(run_dir, plan.folder / n) for n in ("scores.csv", "scores.txt"))
    df = score_into(scorer, [ScoreJob.from_manifest(plan.manifest)], csv, txt)
    if (df.error == "").all():
        claim(run_dir, plan.folder / INPUTS).write_text(json.dumps(
            {"inputs": inputs, "scores": [file_digest(csv), file_digest(txt)]}, indent=2))
    return df


def score_or_reuse(scorer, run_dir: Path, plan: CorpusPlan, detector_id: str) -> tuple[pd.DataFrame, bool]:
    """(the corpus's score table, whether an earlier run's scores were taken over)."""
    inputs = corpus_inputs(plan, detector_id, scoring_identity(scorer.cfg))
    done = finished_scores(run_dir, plan, inputs)
    if done is not None:
        return pd.read_csv(done, keep_default_na=False, dtype=str).assign(
            score=lambda d: pd.to_numeric(d.score)), True
    return score_corpus(scorer, run_dir, plan, inputs), False


def _corpus_folders(run_dir: Path) -> set[str]:
    return {PurePosixPath(e).parts[1] for e in written(run_dir)
            if len(PurePosixPath(e).parts) >= 2 and PurePosixPath(e).parts[0] == RESULTS_DIR
            and (Path(run_dir) / RESULTS_DIR / PurePosixPath(e).parts[1]).is_dir()}


def remove_other_detectors(run_dir: Path, detector_id: str, scoring: dict) -> list[Path]:
    """Remove every corpus's scores that another detector or other scoring settings produced, or that
    never finished: they can describe nothing this run computes. Those of this detector stay, checked
    against their corpus when it is listed again."""
    stale = []
    for name in sorted(_corpus_folders(run_dir)):
        folder = Path(run_dir) / RESULTS_DIR / name
        if not any((folder / f).exists() for f in CACHED):
            continue  # only what is derived afresh at each run (a manifest just built): nothing to judge
        try:
            held = json.loads((folder / INPUTS).read_text()).get("inputs", {}) if (folder / INPUTS).is_file() else {}
        except (ValueError, UnicodeDecodeError):
            held = {}
        if held.get("detector") != detector_id or held.get("scoring") != scoring:
            stale.append(name)
    removed = remove_written(run_dir, [f"{RESULTS_DIR}/{name}/{f}" for name in stale for f in CACHED])
    empty = [f"{RESULTS_DIR}/{n}" for n in stale if not any((Path(run_dir) / RESULTS_DIR / n).iterdir())]
    return removed + remove_written(run_dir, empty)  # a folder left empty goes too


def derived_results(run_dir: Path) -> list[str]:
    """What 04 writes under ``results/`` afresh at every run (the table, its figure, manifests, key and
    LLR files): everything the record lists there but the corpora's scores and their inputs record."""
    out = []
    for e in written(run_dir):
        parts = PurePosixPath(e.rstrip("/")).parts
        if parts[0] != RESULTS_DIR or len(parts) < 2 or (len(parts) == 2 and e.endswith("/")):
            continue
        if not (len(parts) == 3 and parts[2] in CACHED):
            out.append("/".join(parts))
    return sorted(out)
