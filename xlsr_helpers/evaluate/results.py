"""Notebook 04's steps: score the splits, compute the organisers' metrics, the report and the records."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xlsr_helpers.core.written import claim
from xlsr_helpers.data.audio import SAMPLE_RATE
from xlsr_helpers.data.corpora import parse_corpora
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.data.labels import decide
from xlsr_helpers.data.manifest import ManifestError, read_manifest
from xlsr_helpers.evaluate import report
from xlsr_helpers.evaluate.calibration import Calibration, fit_calibration
from xlsr_helpers.evaluate.metrics import per_condition_eer
from xlsr_helpers.evaluate.score_output import ScoreJob, score_into, write_scores
from xlsr_helpers.evaluate.scorefile import (
    TDCF_VERSIONS,
    ScoreFileError,
    evaluate,
    json_record,
    read_asv_2021,
    read_asv_scores,
    select_phase,
)


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
    refuse_unscored(scored)
    subset, kept = select_phase(scored, phase)
    rates, versions = asv_rates(asv, phase)
    return {**evaluate(subset, rates, versions or TDCF_VERSIONS), "trials": kept}


def refuse_unscored(scored: pd.DataFrame) -> None:
    """Metrics need every trial's score: a file that could not be scored is named, never left out."""
    failed = scored[scored.error.astype(str) != ""]
    if len(failed):
        raise ScoreFileError(f"{len(failed)} file(s) could not be scored, e.g. {failed.path.iloc[0]}: "
                             f"{failed.error.iloc[0]}; fix or remove them before computing metrics")


def splits_to_score(manifest_dir: Path, spec: str = "auto") -> list[str]:
    """``'auto'``: dev/eval/all manifests that exist (an eval-only corpus such as In-the-Wild
    scores just its eval); otherwise a comma-separated list that must exist."""
    wanted = [s.strip() for s in spec.split(",")] if spec != "auto" else ["dev", "eval", "all"]
    found = [s for s in wanted if (manifest_dir / f"{s}.csv").is_file()]
    missing = [s for s in wanted if s not in found]
    if (spec != "auto" and missing) or not found:
        raise ManifestError(f"no manifest for split(s) {missing or wanted} in {manifest_dir}; run 01_data_prep first")
    return found


def score_splits(scorer, run_dir: Path, splits: str = "auto") -> dict[str, pd.DataFrame]:
    """Score every chosen split's manifest of the run into ``scores/<split>.csv`` and ``.txt`` (noted in
    the run's record), rows written as they finish so a crash keeps them; returns the tables."""
    scored = {}
    for split in splits_to_score(run_dir / "manifests", splits):
        job = ScoreJob.from_manifest(read_manifest(run_dir / "manifests" / f"{split}.csv"))
        csv, txt = (claim(run_dir, run_dir / "scores" / f"{split}.{ext}") for ext in ("csv", "txt"))
        scored[split] = score_into(scorer, [job], csv, txt)
    return scored


def evaluate_splits(scored: dict[str, pd.DataFrame], dataset: str, root: Path, asv_scores: str = "auto",
                    phase: str = "eval") -> dict[str, dict]:
    """Each scored split's metrics (EER, min t-DCF with the corpus' ASV data, per-attack EER). A run on
    several corpora pools their trials: no one ASV system goes with them, so no min t-DCF here (each
    corpus's own is in the results table, ``table.own_corpora``)."""
    if len(parse_corpora(dataset)) > 1:
        asv_scores = "none"
    return {split: evaluate_scores(df, asv_reference(dataset, root, split, asv_scores), phase)
            for split, df in scored.items()}


def split_calibration(scorer, scored: dict[str, pd.DataFrame]) -> Calibration | None:
    """The detector's calibration; for a detector without one, fitted on the dev scores (when dev was
    scored); else None. Changes nothing: ``with_calibration`` applies it."""
    if scorer.calibration is not None or "dev" not in scored:
        return scorer.calibration
    dev = scored["dev"]
    return fit_calibration(dev.score[dev.label == "bonafide"], dev.score[dev.label == "spoof"], fitted_on="dev (04)")


def with_calibration(scored: dict[str, pd.DataFrame], calibration: Calibration | None,
                     prior_spoof: float = 0.5) -> dict[str, pd.DataFrame]:
    """New score tables whose llr / p_spoof come from ``calibration`` (the tables as they are without one)."""
    if calibration is None:
        return scored
    return {split: df.assign(llr=calibration.llr(df.score), p_spoof=calibration.p_spoof(df.score, prior_spoof))
            for split, df in scored.items()}


def calibrate_splits(scorer, scored: dict[str, pd.DataFrame], run_dir: Path,
                     prior_spoof: float = 0.5) -> tuple[dict[str, pd.DataFrame], Calibration | None]:
    """The tables under the detector's calibration, or one fitted on dev here for a detector without
    one; only then are the score files written again (their llr / p_spoof columns change)."""
    calibration = split_calibration(scorer, scored)
    if calibration is None or calibration is scorer.calibration:
        return scored, calibration  # already in the tables and the files, from the Scorer
    scored = with_calibration(scored, calibration, prior_spoof)
    write_split_scores(scored, run_dir)
    return scored, calibration


def write_split_scores(scored: dict[str, pd.DataFrame], run_dir: Path) -> list[Path]:
    """``scores/<split>.csv`` and the ASVspoof-format ``scores/<split>.txt`` again, noted in the run's
    record: only when 04 fitted a calibration the detector lacked (its llr / p_spoof columns change)."""
    paths = []
    for split, df in scored.items():
        csv, txt = (claim(run_dir, run_dir / "scores" / f"{split}.{ext}") for ext in ("csv", "txt"))
        write_scores(df, csv, txt)
        paths += [csv, txt]
    return paths


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
    # transformers: scoring pulls the model stack, only for notebook 04
    from xlsr_helpers.evaluate.scoring import ScoringConfig
    samples = lambda s: None if s == "auto" else int(round(float(s) * SAMPLE_RATE))  # noqa: E731
    return ScoringConfig(window=samples(window_seconds), hop=samples(hop_seconds), batch_size=batch_size,
                         aggregation=None if aggregation == "auto" else aggregation, prior_spoof=prior_spoof)


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
                   data_root: Path | list[Path], t_start: float, extra: dict | None = None) -> dict:
    """The ``metrics.json`` payload: EER, min t-DCF, per-attack EER, threshold, model, data, seconds
    (``data_root``: the corpus's root, or each corpus's root, written joined with '+' as given)."""
    head = headline_split(results)
    roots = data_root if isinstance(data_root, list) else [data_root]
    rec = {"dataset": dataset, "data_root": "+".join(map(str, roots)), "detector": detector, "split": head,
           "eer": results[head]["eer"], "min_tdcf": results[head].get("min_tdcf"),
           "threshold": threshold, "threshold_from": threshold_from, "seconds": round(time.time() - t_start, 1)}
    for split, r in results.items():
        rec[split] = json_record(r)
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
    pred = decide(subset.score, threshold)
    return float(np.mean(pred == subset.label))


def write_json(obj: dict, path: Path) -> Path:
    path.write_text(json.dumps(obj, indent=2, default=float))
    return path


def write_metrics(metrics: dict, run_dir: Path) -> Path:
    """``metrics.json`` of the run, noted in the run's record (so that clearing may remove it)."""
    return write_json(metrics, claim(run_dir, run_dir / "metrics.json"))
