"""The questions a reader asks after the EER: how sure is it, where does it fail, do the
probabilities mean anything. Tables and numbers for notebook 04 and ``metrics.json``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from xlsr_helpers.data.labels import decide
from xlsr_helpers.evaluate.calibration import Calibration, reliability_table
from xlsr_helpers.evaluate.metrics import act_dcf, cllr, compute_eer
from xlsr_helpers.evaluate.scorefile import ScoreFileError


def roc_auc(df: pd.DataFrame) -> float:
    """Area under the ROC curve, bonafide as the positive class (1 = perfect ranking, 0.5 = chance)."""
    return float(roc_auc_score(df.label == "bonafide", df.score))


def confusion_at(df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Trials by true label (rows) and decision at ``threshold`` (score > threshold -> bonafide)."""
    pred = decide(df.score, threshold)
    table = pd.crosstab(pd.Categorical(df.label, ["bonafide", "spoof"]), pd.Categorical(pred, ["bonafide", "spoof"]),
                        rownames=["true"], colnames=["decided"], dropna=False)
    return table


def bootstrap_eer(df: pd.DataFrame, n: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile interval of the EER over ``n`` resamples of the trials (each class resampled with
    replacement to its own size, so every resample keeps the class ratio). Seeded: reproducible."""
    bona = df.score[df.label == "bonafide"].to_numpy()
    spoof = df.score[df.label == "spoof"].to_numpy()
    rng = np.random.default_rng(seed)
    eers = np.array([compute_eer(rng.choice(bona, bona.size), rng.choice(spoof, spoof.size))[0] for _ in range(n)])
    low, high = np.quantile(eers, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"low": float(low), "high": float(high), "level": level, "resamples": n, "seed": seed}


def worst_errors(df: pd.DataFrame, threshold: float, k: int = 5) -> pd.DataFrame:
    """The ``k`` most confident false accepts (spoofs scored highest above the threshold) and false
    rejects (bonafide scored lowest at or below it)."""
    fa = df[(df.label == "spoof") & (df.score > threshold)].nlargest(k, "score").assign(error="false accept")
    fr = df[(df.label == "bonafide") & (df.score <= threshold)].nsmallest(k, "score").assign(error="false reject")
    cols = ["error", "utt_id", "path", "score", "label"] + [c for c in ("attack",) if c in df]
    return pd.concat([fa, fr], ignore_index=True)[cols]


def confident_errors(scores: pd.DataFrame, manifest: pd.DataFrame, threshold: float, k: int = 3) -> pd.DataFrame:
    """``worst_errors`` of a score table (``xlsr score``'s CSV, or 04's) with the labels of its manifest:
    the ``k`` most confident false accepts and false rejects at ``threshold``, the files whose window
    scores are worth a look. Error rows (no score) are left out; an id the manifest lacks is refused."""
    scored = scores[scores.error.isna() | (scores.error == "")] if "error" in scores else scores  # read_csv: NaN
    meta = manifest[["utt_id", "label"] + [c for c in ("attack",) if c in manifest]]
    joined = scored.drop(columns=[c for c in meta.columns if c != "utt_id" and c in scored]).merge(
        meta, on="utt_id", how="left", validate="many_to_one")
    unknown = joined.utt_id[joined.label.isna()].tolist()
    if unknown:
        raise ScoreFileError(f"{len(unknown)} scored id(s) are not in the manifest: {unknown[:5]}")
    return worst_errors(joined, threshold, k)


def calibration_report(df: pd.DataFrame, calibration: Calibration | None, prior_spoof: float = 0.5) -> dict:
    """Cllr and act DCF of the raw scores and of the calibrated LLRs, and the reliability table."""
    bona, spoof = df.score[df.label == "bonafide"].to_numpy(), df.score[df.label == "spoof"].to_numpy()
    out = {"raw": {"cllr": cllr(bona, spoof), "act_dcf": act_dcf(bona, spoof)[0]}}
    if calibration is None:
        return {**out, "calibrated": None, "reliability": None}
    out["calibrated"] = {"cllr": cllr(calibration.llr(bona), calibration.llr(spoof)),
                         "act_dcf": act_dcf(calibration.llr(bona), calibration.llr(spoof))[0],
                         "fitted_on": calibration.fitted_on, "prior_spoof": prior_spoof}
    out["reliability"] = reliability_table(calibration.p_spoof(df.score, prior_spoof), (df.label == "spoof").to_numpy())
    return out


def audio_players(examples: pd.DataFrame, max_seconds: float = 8.0):
    """One inline player per example with its file name and score (the start of long files)."""
    from IPython.display import HTML, Audio  # IPython: only in a notebook

    # torch: data.audio; the report stays torch-free
    from xlsr_helpers.data.audio import SAMPLE_RATE, AudioError, load_audio
    parts = []
    for r in examples.itertuples():
        try:
            wave = load_audio(r.path)[: int(max_seconds * SAMPLE_RATE)]
            player = Audio(wave, rate=SAMPLE_RATE)._repr_html_()
        except AudioError as exc:
            player = f"<i>not playable: {exc.reason}</i>"
        parts.append(f"<p><b>{r.error}</b> {r.utt_id} (score {r.score:.3f}, {getattr(r, 'attack', '')})<br>"
                     f"<code>{r.path}</code><br>{player}</p>")
    return HTML("".join(parts) or "<p>no errors at this threshold</p>")
