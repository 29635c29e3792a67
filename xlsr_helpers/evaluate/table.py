"""One results table over every corpus notebook 04 evaluated: ``RUN/results/table.csv``, ``table.md``
and ``table.json`` (the rows plus each corpus's per-attack and per-condition EER and the ``xlsr eer``
command that gives the same figures from its score file).

Each row is computed from the score file as written (``utt_id score``, six decimals) joined with the
corpus's trials, exactly what ``xlsr eer`` reads: the table and the command line cannot disagree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.core.written import claim
from xlsr_helpers.data.corpora import parse_corpora
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.data.manifest import read_manifest
from xlsr_helpers.evaluate.calibration import Calibration
from xlsr_helpers.evaluate.corpora import RESULTS_DIR, detector_identity, score_or_reuse
from xlsr_helpers.evaluate.metrics import act_dcf, cllr, per_condition_eer
from xlsr_helpers.evaluate.report import bootstrap_eer
from xlsr_helpers.evaluate.results import CONDITION_COLUMNS, asv_rates, asv_reference, headline_split, refuse_unscored
from xlsr_helpers.evaluate.score_output import asvspoof_lines
from xlsr_helpers.evaluate.scorefile import TDCF_VERSIONS, evaluate, join_scores, read_score_file, select_phase

PRIMARY = {"eer": "EER", "min_tdcf": "min t-DCF", "min_dcf": "min DCF"}  # a descriptor's primary_metric
TABLE_FILES = ("table.csv", "table.md", "table.json", "eer_per_corpus.png")
COLUMNS = {"corpus": "corpus", "split": "split", "phase": "phase", "trials": "trials", "eer_pct": "EER (%)",
           "eer_ci_low_pct": "EER 95 % low", "eer_ci_high_pct": "EER 95 % high", "primary_metric": "primary metric",
           "primary_value": "value", "act_dcf": "act DCF", "cllr": "Cllr (bits)"}


def file_scores(score_file: Path, trials: pd.DataFrame) -> pd.DataFrame:
    """The trials (labels, attacks, phases, conditions) with the scores of ``score_file`` as written."""
    keep = [c for c in trials.columns if c not in ("score", "llr", "p_spoof", "label_pred", "n_windows", "error")]
    scores = read_score_file(score_file)
    join_scores(scores, trials[keep], str(score_file), "trials")  # every trial scored once, no other id
    return trials[keep].merge(scores, on="utt_id", how="left")  # in the trials' order: the bootstrap's draws follow it


def keys_file(trials: pd.DataFrame, path: Path) -> Path:
    """The trials as a 5-column key file (``- utt_id - attack label``, the 2019 layout) for ``xlsr eer``,
    for a corpus whose own protocol is no ASVspoof key file (In-the-Wild's meta.csv, own folders)."""
    attack = trials["attack"].astype(str).str.replace(r"\s+", "_", regex=True)
    path.write_text("".join(f"- {u} - {a} {lab}\n" for u, a, lab in zip(trials.utt_id, attack, trials.label, strict=True)))
    return path


def llr_file(scored: pd.DataFrame, calibration: Calibration, path: Path) -> Path:
    """``utt_id llr`` of the calibrated scores, six decimals as the score file (act DCF and Cllr read them)."""
    path.write_text(asvspoof_lines(scored.assign(score=calibration.llr(scored.score), error=""), path))
    return path


def _primary(desc: dict, result: dict, versions: tuple) -> tuple[str, float]:
    key = desc.get("primary_metric", "eer")
    if key not in PRIMARY:
        raise ConfigError(f"descriptor {desc['name']}: primary_metric {key!r} is not one of {list(PRIMARY)}")
    if key == "min_tdcf":
        version = versions[0] if versions else "2019"
        name = f"min t-DCF {version} {'legacy' if version == '2019' else 'revised'}"
        return name if "min_tdcf" in result else f"{name} (no ASV scores)", result.get("min_tdcf", math.nan)
    return PRIMARY[key], result[key]


def corpus_row(dataset: str, split: str, scored: pd.DataFrame, asv: dict | None, phase: str = "eval",
               calibration: Calibration | None = None, llr_path: Path | None = None, bootstrap: int = 1000,
               seed: int = 0, name: str | None = None) -> tuple[dict, dict]:
    """(the table row, the corpus's full record) of file-read scores (``file_scores``): EER with its
    bootstrap interval, the corpus's primary metric, act DCF and Cllr of the calibrated LLRs (written
    to ``llr_path`` and read back) when there is a calibration. ``name``: the corpus's name in the
    run (a run on several corpora: ``mine-2`` for a descriptor's second corpus); else the descriptor's."""
    desc = load_descriptor(dataset)
    subset, kept = select_phase(scored, phase)
    rates, versions = asv_rates(asv, phase)
    result = evaluate(subset, rates, versions or TDCF_VERSIONS)
    ci = bootstrap_eer(subset, bootstrap, seed) if bootstrap else None
    primary, value = _primary(desc, result, versions)
    row = {"corpus": name or desc["name"], "split": split, "phase": phase if "phase" in scored else "-",
           "trials": len(subset), "eer_pct": 100 * result["eer"],
           "eer_ci_low_pct": 100 * ci["low"] if ci else math.nan, "eer_ci_high_pct": 100 * ci["high"] if ci else math.nan,
           "primary_metric": primary, "primary_value": value, "act_dcf": math.nan, "cllr": math.nan}
    if calibration is not None and llr_path is not None:
        llr = select_phase(file_scores(llr_file(scored, calibration, llr_path), scored), phase)[0]
        bona, spoof = llr.score[llr.label == "bonafide"].to_numpy(), llr.score[llr.label == "spoof"].to_numpy()
        row.update(act_dcf=act_dcf(bona, spoof)[0], cllr=cllr(bona, spoof))
    record = {**row, "kept": kept, "eer_ci": ci, "threshold": result["threshold"],
              **{k: result[k] for k in ("min_dcf", "act_dcf", "cllr", "n_bonafide", "n_spoof")},
              "raw": {k: result[k] for k in ("act_dcf", "cllr")},
              **{f"min_tdcf_{v}": result[f"min_tdcf_{v}"] for v in versions if f"min_tdcf_{v}" in result},
              "per_attack_eer": dict(zip(result["per_attack"].attack, result["per_attack"].eer, strict=True)),
              "per_condition_eer": condition_eers(subset)}
    record.update(act_dcf=row["act_dcf"], cllr=row["cllr"])  # the calibrated ones, as the row
    return row, record


def condition_eers(subset: pd.DataFrame) -> dict[str, dict[str, float]]:
    """EER within each value of every 2021-style condition column (codec, transmission, source, vocoder)."""
    return {c: dict(zip(t[c], t.eer, strict=True)) for c in CONDITION_COLUMNS if c in subset
            for t in [per_condition_eer(subset, c)]}


def eer_command(score_file: Path, protocol: Path, asv: dict | None, has_phase: bool, phase: str) -> list[str]:
    """The ``xlsr eer`` arguments that compute a row's EER, min t-DCF and min DCF from its score file."""
    args = ["xlsr", "eer", str(score_file), "--protocol", str(protocol)]
    if asv is not None:
        args += ["--asv-scores", str(asv["scores"])] + (["--asv-keys", str(asv["keys"])] if "keys" in asv else [])
    return args + (["--phase", phase] if has_phase else [])


def results_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS))


def markdown(table: pd.DataFrame) -> str:
    """The table as a Markdown table (numbers rounded as papers print them; '-' for what does not apply)."""
    def cell(col: str, v) -> str:
        if isinstance(v, float | np.floating):
            return "-" if math.isnan(v) else f"{v:.2f}" if col.endswith("_pct") else f"{v:.4f}"
        return str(v)
    head = [COLUMNS[c] for c in table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(table.columns, r, strict=True)) + " |"
              for r in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_table(run_dir: Path, table: pd.DataFrame, records: dict) -> list[Path]:
    """``results/table.csv``, ``table.md`` and ``table.json`` (the rows' records), noted in the run's record."""
    out = [claim(run_dir, Path(run_dir) / RESULTS_DIR / n) for n in TABLE_FILES[:3]]
    table.to_csv(out[0], index=False)
    out[1].write_text(markdown(table))
    out[2].write_text(json.dumps({"rows": records}, indent=2, default=float, allow_nan=True))
    return out


def protocol_for(run_dir: Path, dataset: str, folder: Path, trials: pd.DataFrame, protocol: Path) -> Path:
    """The key file ``xlsr eer`` reads for a corpus: its own protocol when that is an ASVspoof key file
    holding exactly these trials, else ``keys_file`` in ``folder`` (a CSV protocol, a subsampled manifest)."""
    lines = sum(1 for ln in protocol.read_text(encoding="utf-8").split("\n") if ln.strip()) if protocol.is_file() else -1
    if load_descriptor(dataset)["format"] == "whitespace" and lines == len(trials):
        return protocol
    return keys_file(trials, claim(run_dir, folder / "keys.txt"))


def evaluate_corpus(run_dir: Path, dataset: str, split: str, trials: pd.DataFrame, score_file: Path,
                    protocol: Path, asv: dict | None, calibration: Calibration | None, phase: str = "eval",
                    bootstrap: int = 1000, seed: int = 0, name: str | None = None) -> tuple[dict, dict]:
    """One corpus's row and record from its score file, with the ``xlsr eer`` command that repeats it
    (``name``: the corpus's name in a run on several corpora, its results folder's name)."""
    folder = Path(run_dir) / RESULTS_DIR / (name or load_descriptor(dataset)["name"])
    scored = file_scores(score_file, trials)
    llr_path = claim(run_dir, folder / "llr.txt") if calibration is not None else None
    row, record = corpus_row(dataset, split, scored, asv, phase, calibration, llr_path, bootstrap, seed, name)
    keys = protocol_for(run_dir, dataset, folder, trials, protocol)
    record |= {"dataset": str(dataset), "scores": str(score_file), "protocol": str(keys),
               "llr": str(llr_path) if llr_path else None, "asv": {k: str(v) for k, v in asv.items()} if asv else None,
               "xlsr_eer": eer_command(score_file, keys, asv, "phase" in trials, phase)}
    return row, record


def corpora_table(scorer, run_dir: Path, detector_dir: Path, plans: list, own: dict | list[dict],
                  calibration: Calibration | None, phase: str = "eval", asv_scores: str = "auto",
                  bootstrap: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """The run's own corpus (``own``: ``evaluate_corpus``'s keyword arguments for it; a run on several
    corpora: a list, one per corpus, ``own_corpora``) and every planned corpus, each scored or its
    finished scores taken over (``corpora.score_or_reuse``), one row each; the table files written.
    Returns the table and the records (``reused`` says which were taken over)."""
    rows, records = [], {}
    for one in [own] if isinstance(own, dict) else own:
        row, record = evaluate_corpus(run_dir, calibration=calibration, phase=phase, bootstrap=bootstrap, seed=seed,
                                      **one)
        manifest = Path(run_dir) / "manifests" / f"{one['split']}.csv"
        rows.append(row)
        records[row["corpus"]] = {**record, "reused": False, "manifest": str(manifest)}
    detector_id = detector_identity(detector_dir)
    for plan in plans:
        scored, reused = score_or_reuse(scorer, run_dir, plan, detector_id)
        asv = asv_reference(plan.dataset, plan.root, plan.split, asv_scores)
        refuse_unscored(scored)
        row, record = evaluate_corpus(run_dir, plan.dataset, plan.split, plan.manifest, plan.folder / "scores.txt",
                                      plan.protocol, asv, calibration, phase, bootstrap, seed)
        rows.append(row)
        records[row["corpus"]] = {**record, "reused": reused, "manifest": str(plan.folder / "manifest" / f"{plan.split}.csv")}
    table = results_table(rows)
    write_table(run_dir, table, records)
    return table, records


def validation(run_dir: Path) -> dict:
    """The run's ``manifests/validation.yaml`` (notebook 01's record of protocols and counts), {} without one."""
    report = Path(run_dir) / "manifests" / "validation.yaml"
    return (yaml.safe_load(report.read_text()) or {}) if report.is_file() else {}


def own_corpus(run_dir: Path, dataset: str, root: Path, split: str, asv_scores: str = "auto") -> dict:
    """``corpora_table``'s ``own``: the run's corpus on its headline split, from the run's manifest and
    ``scores/<split>.txt``; its protocol as ``validation.yaml`` (notebook 01) names it."""
    manifests = Path(run_dir) / "manifests"
    protocol = validation(run_dir).get("splits", {}).get(split, {}).get("protocol", "")
    return {"dataset": dataset, "split": split, "trials": read_manifest(manifests / f"{split}.csv"),
            "score_file": Path(run_dir) / "scores" / f"{split}.txt", "protocol": Path(protocol),
            "asv": asv_reference(dataset, root, split, asv_scores)}


def figure_path(run_dir: Path) -> Path:
    """Where the EER-per-corpus figure goes (``results/eer_per_corpus.png``), noted in the run's record."""
    return claim(run_dir, Path(run_dir) / RESULTS_DIR / TABLE_FILES[3])


CORPUS_COLUMNS = ("phase", *CONDITION_COLUMNS)  # columns that only some corpora of a run fill


def corpus_split(scored: dict[str, pd.DataFrame], corpus: str) -> str | None:
    """The split one corpus of a run on several is reported on, as ``headline_split`` for one corpus:
    eval when it has trials there, else the last scored split that holds it (None: no scored split)."""
    held = [s for s, df in scored.items() if (df.corpus.astype(str) == corpus).any()]
    return None if not held else "eval" if "eval" in held else held[-1]


def corpus_trials(df: pd.DataFrame, corpus: str) -> pd.DataFrame:
    """One corpus's rows of a joined manifest or score table under the organisers' ids (``source_id``);
    a column that only other corpora fill (phase, the 2021 conditions) left out."""
    out = df[df.corpus.astype(str) == corpus].copy()
    out["utt_id"] = out["source_id"]
    empty = [c for c in CORPUS_COLUMNS if c in out and out[c].astype(str).isin(["", "nan"]).all()]
    return out.drop(columns=[*empty, "source_id"]).reset_index(drop=True)


def own_corpora(run_dir: Path, dataset: str, roots: list[Path], scored: dict[str, pd.DataFrame],
                asv_scores: str = "auto") -> list[dict]:
    """``corpora_table``'s ``own`` for every corpus of the run. One corpus: ``own_corpus`` on the headline
    split. Several: each on its own split (``corpus_split``), its scores under the organisers' ids in
    ``results/<corpus>/scores_<split>.txt`` (what ``xlsr eer`` reads with that corpus's key file), its
    protocol as ``validation.yaml`` names it and its ASV data from its own descriptor and root."""
    specs = parse_corpora(dataset)
    if len(specs) == 1:
        return [own_corpus(run_dir, dataset, roots[0], headline_split(scored), asv_scores)]
    manifests = Path(run_dir) / "manifests"
    held = validation(run_dir).get("corpora", {})
    out = []
    for spec, root in zip(specs, roots, strict=True):
        split = corpus_split(scored, spec.corpus)
        if split is None:
            continue  # a corpus of the train split only: nothing of it was scored
        score_file = claim(run_dir, Path(run_dir) / RESULTS_DIR / spec.corpus / f"scores_{split}.txt")
        score_file.write_text(asvspoof_lines(corpus_trials(scored[split], spec.corpus), score_file))
        protocol = held.get(spec.corpus, {}).get("splits", {}).get(split, {}).get("protocol", "")
        out.append({"dataset": spec.descriptor, "split": split, "score_file": score_file, "protocol": Path(protocol),
                    "trials": corpus_trials(read_manifest(manifests / f"{split}.csv"), spec.corpus),
                    "asv": asv_reference(spec.descriptor, root, split, asv_scores), "name": spec.corpus})
    return out
