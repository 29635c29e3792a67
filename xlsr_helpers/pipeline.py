"""The notebooks' steps, so each notebook cell is one call plus a table or a figure."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from . import report
from .audio import SAMPLE_RATE
from .calibration import Calibration, fit_calibration
from .demo import make_demo_corpus
from .errors import ConfigError
from .kaggle_env import glob_input, kaggle_input, kaggle_working, on_kaggle
from .manifest import ManifestError, ManifestResult, check_audio, find_root, load_descriptor, read_manifest
from .metrics import per_condition_eer
from .model import save_random_backbone
from .params import TINY_RANDOM
from .runner import clear_results
from .scorefile import TDCF_VERSIONS, ScoreFileError, evaluate, read_asv_2021, read_asv_scores, select_phase
from .scoring import write_scores
from .train import RUN_RECORD, stale_stage

log = logging.getLogger(__name__)


def resolve_run_dir(run_dir: str | Path) -> Path:
    """``'auto'``: ``/kaggle/working/xlsr-run`` on Kaggle, else ``runs/full``."""
    if str(run_dir) == "auto":
        run_dir = kaggle_working() / "xlsr-run" if on_kaggle() else Path("runs/full")
    p = Path(run_dir).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    return p


def resolve_data_root(spec: str, dataset: str, run_dir: Path, seed: int = 0) -> Path:
    """``'auto'`` (Kaggle mounts), ``'demo:small'``/``'demo:tiny'`` (generate the demo corpus into the
    run folder, once), or a path."""
    if spec == "auto":
        return find_root(dataset)
    if spec.startswith("demo:"):
        size = spec.split(":", 1)[1]
        root = run_dir / "demo_data" / "LA"
        if not (root / "ASVspoof2019_LA_cm_protocols").is_dir():
            make_demo_corpus(run_dir / "demo_data", seed=seed, size=size)
        return root
    return find_root(dataset, spec)


def resolve_base_model(name: str, run_dir: Path) -> str:
    """A folder as given; ``'tiny-random'`` makes (once) a random tiny wav2vec2 folder; a hub id is
    replaced by a copy of that model attached to the Kaggle kernel (a dataset or a Kaggle Model), so
    that an offline kernel needs no hub access."""
    if name == TINY_RANDOM:
        folder = run_dir / "tiny-random-wav2vec2"
        if not (folder / "config.json").exists():
            save_random_backbone(folder)
        return str(folder)
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    attached = find_attached_model(name)
    if attached is not None:
        log.info("using %s, the attached copy of %s (no hub access needed)", attached, name)
        return str(attached)
    return name


MODEL_PATTERNS = ["*", "*/*", "*/*/*", "*/*/*/*"]  # dataset roots and Kaggle Models' <framework>/<variation>/<version>


def find_attached_model(hub_id: str) -> Path | None:
    """A folder under the Kaggle input root holding this hub model's saved files: config.json and
    weights, with the model's name (e.g. ``wav2vec2-xls-r-300m`` or ``xls-r-300m``) in its path."""
    name = hub_id.rstrip("/").split("/")[-1].lower()
    names = {name, name.removeprefix("wav2vec2-")}
    for folder in glob_input(MODEL_PATTERNS):
        rel = str(folder.relative_to(kaggle_input())).lower()
        if any(n in rel for n in names) and (folder / "config.json").is_file() and \
                any(folder.glob("*.safetensors")) | any(folder.glob("pytorch_model*.bin")):
            return folder
    return None


def evaluation_detector(run_dir: Path, detector: str) -> Path:
    """The detector notebook 04 scores. ``'auto'``: this run's stage-2 detector, refused when it was
    trained from manifests or a stage-1 detector that have changed since. Old results (metrics.json,
    scores/) are removed first: they must not outlive what they were computed from."""
    clear_results(run_dir)
    if detector != "auto":
        return Path(detector).expanduser()
    stage1, stage2 = run_dir / "stage1", run_dir / "stage2"
    train_df, dev_df = (read_manifest(run_dir / "manifests" / f"{s}.csv") for s in ("train", "dev"))
    reasons = stale_stage(stage2, train_df, dev_df, stage1 / "detector")
    if (stage1 / RUN_RECORD).exists():
        reasons += [f"stage1 {r}" for r in stale_stage(stage1, train_df, dev_df, None)]
    if reasons:
        raise ConfigError(f"{stage2 / 'detector'} is stale: {'; '.join(reasons)}; run 02/03 again "
                          "(on_change='restart') or give detector=<folder> to score another detector")
    return stage2 / "detector"


def subsample(df: pd.DataFrame, max_trials: int | None, seed: int = 0) -> pd.DataFrame:
    """About ``max_trials`` rows (rounding per group), stratified by label x attack; every group keeps >= 1 row."""
    if max_trials is None or len(df) <= max_trials:
        return df
    frac = max_trials / len(df)
    parts = [g.sample(max(1, round(len(g) * frac)), random_state=seed)
             for _, g in df.groupby(["label", "attack"], sort=True)]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def write_manifests(result: ManifestResult, out_dir: Path, max_trials_per_split: int | None = None,
                    seed: int = 0) -> dict[str, pd.DataFrame]:
    """Write the validated manifests (optionally subsampled) and the validation files."""
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
    return d.assign(duration_s=[sf.info(p).duration for p in d.path])


def asv_reference(dataset: str, root: Path, split: str, spec: str = "auto") -> dict | None:
    """The organisers' ASV data for min t-DCF: ``{"scores": path}`` (2019 score files, legacy t-DCF),
    ``{"keys": path, "scores": path}`` (2021 keys, revised t-DCF), a given 2019-style path, or None."""
    if spec == "none":
        return None
    if spec != "auto":
        return {"scores": Path(spec)}
    desc = load_descriptor(dataset)
    rel = desc.get("asv_scores", {}).get(split)
    if rel and (root / rel).is_file():
        return {"scores": root / rel}
    if "asv_2021" in desc:
        found = {k: next((root / c for c in desc["asv_2021"][k] if (root / c).is_file()), None)
                 for k in ("keys", "scores")}
        if all(found.values()):
            return found
    return None


def asv_rates(reference: dict | None, phase: str = "eval"):
    """(ASV rates, t-DCF versions to report, the official one first) for an ``asv_reference``."""
    if reference is None:
        return None, ()
    if "keys" in reference:
        return read_asv_2021(reference["keys"], reference["scores"], phase), ("2021",)
    return read_asv_scores(reference["scores"]), TDCF_VERSIONS


def evaluate_scores(scored: pd.DataFrame, asv: dict | None, phase: str = "eval") -> dict:
    """EER (+ min t-DCF when ASV data exist) and per-attack EER of a scored manifest; on
    ASVspoof 2021 keys only the ``phase`` subset counts (the official results use 'eval')."""
    failed = scored[scored.error != ""]
    if len(failed):
        raise ScoreFileError(f"{len(failed)} file(s) could not be scored, e.g. {failed.path.iloc[0]}: "
                             f"{failed.error.iloc[0]}; fix or remove them before computing metrics")
    subset, kept = select_phase(scored, phase)
    rates, versions = asv_rates(asv, phase)
    return {**evaluate(subset, rates, versions or TDCF_VERSIONS), "trials": kept}


def splits_to_score(manifest_dir: Path, spec: str = "auto") -> list[str]:
    """``'auto'``: dev/eval/all manifests that exist (an eval-only corpus such as In-the-Wild
    scores just its eval); otherwise a comma-separated list that must exist."""
    wanted = [s.strip() for s in spec.split(",")] if spec != "auto" else ["dev", "eval", "all"]
    found = [s for s in wanted if (manifest_dir / f"{s}.csv").is_file()]
    missing = [s for s in wanted if s not in found]
    if (spec != "auto" and missing) or not found:
        raise ManifestError(f"no manifest for split(s) {missing or wanted} in {manifest_dir}; run 01_data_prep first")
    return found


def score_and_evaluate(scorer, run_dir: Path, dataset: str, root: Path, splits: str = "auto",
                       asv_scores: str = "auto", phase: str = "eval") -> tuple[dict, dict]:
    """Score every split's manifest (``scores/<split>.csv`` + ASVspoof ``.txt``) and compute its metrics."""
    scored, results = {}, {}
    for split in splits_to_score(run_dir / "manifests", splits):
        scored[split] = scorer.score_manifest(read_manifest(run_dir / "manifests" / f"{split}.csv"))
        write_scores(scored[split], run_dir / "scores" / f"{split}.csv", run_dir / "scores" / f"{split}.txt")
        results[split] = evaluate_scores(scored[split], asv_reference(dataset, root, split, asv_scores), phase)
    return scored, results


def summary_table(scored: dict, results: dict, threshold: float, threshold_from: str, phase: str = "eval"):
    """One row per split: trials, EER (%), min t-DCF (each version computed), accuracy at the threshold."""
    rows = {}
    for split, r in results.items():
        row = {"trials": r["trials"], "EER (%)": 100 * r["eer"], "min DCF": r["min_dcf"], "act DCF": r["act_dcf"],
               "Cllr (bits)": r["cllr"]}
        row.update({f"min t-DCF {v}": r[f"min_tdcf_{v}"] for v in TDCF_VERSIONS if f"min_tdcf_{v}" in r})
        row[f"accuracy at {threshold_from} threshold"] = accuracy_at(scored[split], threshold, phase)
        rows[split] = row
    return pd.DataFrame(rows).T


def scoring_config(window_seconds, hop_seconds, batch_size: int, aggregation: str, prior_spoof: float):
    """Notebook 04's parameters as a ``ScoringConfig``; 'auto' leaves a field to the detector's settings."""
    from .scoring import ScoringConfig
    samples = lambda s: None if s == "auto" else int(round(float(s) * SAMPLE_RATE))  # noqa: E731
    return ScoringConfig(window=samples(window_seconds), hop=samples(hop_seconds), batch_size=batch_size,
                         aggregation=None if aggregation == "auto" else aggregation, prior_spoof=prior_spoof)


def ensure_calibration(scorer, scored: dict, run_dir: Path) -> Calibration | None:
    """The detector's calibration; for a detector without one, fitted here on the dev scores (when dev
    was scored) and applied to every split's llr / p_spoof (scores files rewritten)."""
    if scorer.calibration is not None or "dev" not in scored:
        return scorer.calibration
    dev = scored["dev"]
    cal = fit_calibration(dev.score[dev.label == "bonafide"], dev.score[dev.label == "spoof"], fitted_on="dev (04)")
    scorer.calibration = cal
    for split, df in scored.items():
        df["llr"], df["p_spoof"] = cal.llr(df.score), cal.p_spoof(df.score, scorer.cfg.prior_spoof)
        write_scores(df, run_dir / "scores" / f"{split}.csv", run_dir / "scores" / f"{split}.txt")
    return cal


def evaluation_report(df: pd.DataFrame, threshold: float, calibration: Calibration | None, prior_spoof: float = 0.5,
                      bootstrap: int = 1000, seed: int = 0, worst: int = 5, phase: str = "eval") -> dict:
    """ROC AUC, a bootstrap interval for the EER, decisions at the (dev) threshold, calibration before
    and after, and the most confident errors, for the headline split."""
    subset, _ = select_phase(df, phase)
    return {"roc_auc": report.roc_auc(subset),
            "eer_ci": report.bootstrap_eer(subset, bootstrap, seed) if bootstrap else None,
            "confusion": report.confusion_at(subset, threshold),
            "calibration": report.calibration_report(subset, calibration, prior_spoof),
            "worst": report.worst_errors(subset, threshold, worst)}


def report_table(result: dict, rep: dict) -> pd.DataFrame:
    """The report's numbers, one row each, as shown in notebook 04."""
    ci = rep["eer_ci"]
    cal = rep["calibration"]
    rows = {"EER (%)": 100 * result["eer"],
            f"EER {int(100 * ci['level'])} % interval (%)": f"{100 * ci['low']:.2f} - {100 * ci['high']:.2f}" if ci else "-",
            "ROC AUC": rep["roc_auc"], "min DCF": result["min_dcf"],
            "Cllr raw (bits)": cal["raw"]["cllr"], "act DCF raw": cal["raw"]["act_dcf"],
            "Cllr calibrated (bits)": cal["calibrated"]["cllr"] if cal["calibrated"] else "-",
            "act DCF calibrated": cal["calibrated"]["act_dcf"] if cal["calibrated"] else "-"}
    return pd.DataFrame({"value": rows})


def report_record(rep: dict) -> dict:
    """The JSON-able part of the report for ``metrics.json``."""
    cal = rep["calibration"]
    conf = rep["confusion"]
    return {"roc_auc": rep["roc_auc"], "eer_ci": rep["eer_ci"],
            "confusion_at_threshold": {t: {d: int(conf.loc[t, d]) for d in conf.columns} for t in conf.index},
            "calibration": {"raw": cal["raw"], "calibrated": cal["calibrated"]},
            "worst_errors": rep["worst"][["error", "utt_id", "score"]].to_dict(orient="records")}


def headline_split(results: dict) -> str:
    """The split whose figures head the report: eval when scored, else the last one."""
    return "eval" if "eval" in results else list(results)[-1]


def decision_threshold(results: dict) -> tuple[float, str]:
    """The dev EER threshold (never tuned on eval); without dev, the headline split's own."""
    source = "dev" if "dev" in results else headline_split(results)
    return results[source]["threshold"], source


def metrics_record(results: dict[str, dict], threshold: float, threshold_from: str, detector: str, dataset: str,
                   data_root: Path, t_start: float, extra: dict | None = None) -> dict:
    """The ``metrics.json`` payload: EER, min t-DCF, per-attack EER, threshold, model, data, seconds."""
    head = headline_split(results)
    rec = {"dataset": dataset, "data_root": str(data_root), "detector": detector, "split": head,
           "eer": results[head]["eer"], "min_tdcf": results[head].get("min_tdcf"),
           "threshold": threshold, "threshold_from": threshold_from, "seconds": round(time.time() - t_start, 1)}
    for split, r in results.items():
        rec[split] = {k: v for k, v in r.items() if k != "per_attack"}
        rec[split]["per_attack_eer"] = dict(zip(r["per_attack"].attack, r["per_attack"].eer, strict=True))
    rec.update(extra or {})
    return rec


CONDITION_COLUMNS = ("codec", "transmission", "source", "vocoder")  # ASVspoof 2021 key metadata


def condition_tables(scored: pd.DataFrame, phase: str = "eval") -> dict[str, pd.DataFrame]:
    """Per-condition EER for each 2021-style metadata column the scored manifest carries."""
    subset, _ = select_phase(scored, phase)
    return {c: per_condition_eer(subset, c) for c in CONDITION_COLUMNS if c in subset.columns}


def accuracy_at(scored: pd.DataFrame, threshold: float, phase: str = "eval") -> float:
    """Share of trials classified correctly when score > threshold means bonafide."""
    subset, _ = select_phase(scored, phase)
    pred = np.where(subset.score > threshold, "bonafide", "spoof")
    return float(np.mean(pred == subset.label))


def write_json(obj: dict, path: Path) -> Path:
    path.write_text(json.dumps(obj, indent=2, default=float))
    return path

