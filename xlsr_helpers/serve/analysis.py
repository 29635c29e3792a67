"""What the demo page shows for one file, without the page: the upload decoded, its window scores, the
verdict at the detector's dev-EER threshold, ``p_spoof`` at a stated prior (calibrated detectors only)
and the detector's facts from its folder. ``serve.app`` puts these on the page; tests call them directly.

The verdict and the aggregation follow ``Scorer`` exactly (``tests/serve/test_analysis.py`` compares a
file's analysis with its ``xlsr score`` row), so the page and the command line never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import soundfile as sf

from xlsr_helpers.core.errors import XlsrError, gib, short_text
from xlsr_helpers.core.rules import Rule, integer, number
from xlsr_helpers.data.audio import MIN_SAMPLES, SAMPLE_RATE, AudioError, audio_info, load_audio, window_starts
from xlsr_helpers.data.labels import decide
from xlsr_helpers.evaluate.scoring import SETTING_RULES, Scorer
from xlsr_helpers.model.card import licences_of

MAX_SECONDS = 300.0  # the longest upload scored by default: 5 min is about 150 windows, a minute on a CPU
MAX_BYTES = 200 * 2**20  # an upload larger than this is refused before it is decoded (5 min of 48 kHz stereo float)
# The demo's settings (``xlsr app`` and ``serve.app.build_app``), checked before the detector loads.
APP_RULES: dict[str, Rule] = {"max_seconds": number(0, 3600), "prior_spoof": SETTING_RULES["prior_spoof"],
                              "port": integer(1, 65535, none=True)}


class UploadError(XlsrError, ValueError):
    """An upload the demo cannot analyse: too large, too long, too short or not audio (said in the page)."""


@dataclass
class Analysis:
    """One file's result: its overall score and verdict, and the score of every window over time."""

    score: float
    verdict: str  # 'bonafide' or 'spoof': score > threshold is bona fide (the ASVspoof convention)
    threshold: float
    p_spoof: float | None  # None: the detector is not calibrated
    prior_spoof: float
    duration_s: float
    window_starts_s: list[float] = field(default_factory=list)
    window_ends_s: list[float] = field(default_factory=list)
    window_scores: list[float] = field(default_factory=list)
    source_rate: int = SAMPLE_RATE
    channels: int = 1

    def as_dict(self) -> dict:
        """What the page's API returns (``gradio_client``): plain numbers and lists."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @property
    def spoofed_windows(self) -> list[tuple[float, float]]:
        """(start, end) seconds of the windows that score as spoof by themselves."""
        return [(s, e) for s, e, v in zip(self.window_starts_s, self.window_ends_s, self.window_scores, strict=True)
                if decide(v, self.threshold) == "spoof"]


def check_upload(path: str | Path, max_seconds: float = MAX_SECONDS, max_bytes: int = MAX_BYTES) -> tuple[int, int]:
    """The file's (sample rate, channels) from its size and header, before any sample is decoded: too
    large or too long is refused here."""
    path = Path(path)
    if not path.is_file():
        raise UploadError(f"{path.name}: no such file (the upload did not arrive?)")
    size = path.stat().st_size
    if size > max_bytes:
        raise UploadError(f"{path.name} is {gib(size)}; the demo takes files up to {gib(max_bytes)}")
    try:
        info = audio_info(path)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = " ".join(str(exc).replace(str(path), path.name).split())  # not the temporary folder's path
        raise UploadError(f"{path.name}: not audio this demo can read (WAV, FLAC, OGG or MP3): "
                          f"{short_text(reason, 200)}") from None
    if info.samplerate > 0 and info.frames / info.samplerate > max_seconds:
        raise UploadError(f"{path.name} lasts {info.frames / info.samplerate:.1f} s; the demo takes up to "
                          f"{max_seconds:g} s (cut it, or score it whole with `xlsr score`)")
    return int(info.samplerate), int(info.channels)


def analyse(scorer: Scorer, path: str | Path, prior_spoof: float = 0.5, max_seconds: float = MAX_SECONDS,
            max_bytes: int = MAX_BYTES) -> Analysis:
    """Decode ``path`` (any rate, channels and length up to ``max_seconds``) and score it as ``xlsr score``
    does; ``UploadError``/``AudioError`` say in one line why a file cannot be used."""
    APP_RULES["prior_spoof"].check("prior_spoof", prior_spoof)
    rate, channels = check_upload(path, max_seconds, max_bytes)
    try:
        wave = load_audio(path)
    except AudioError as exc:
        raise UploadError(f"{Path(path).name}: {exc.reason}") from None
    if wave.size < MIN_SAMPLES:
        raise UploadError(f"{Path(path).name} is too short: {wave.size} samples at 16 kHz (at least {MIN_SAMPLES}, "
                          "25 ms, are needed)")
    cfg = scorer.cfg
    starts = window_starts(wave.size, cfg.window, cfg.hop)
    windows = [wave[s:s + cfg.window] for s in starts]  # as Scorer cuts them (window_starts decides)
    scores = scorer.score_windows(windows)
    score = float(pd.Series(scores).agg(cfg.aggregation))  # Scorer combines a file's windows the same way
    cal = scorer.calibration
    return Analysis(score=score, verdict=str(decide(score, cfg.threshold)), threshold=cfg.threshold,
                    p_spoof=float(cal.p_spoof(score, prior_spoof)) if cal else None, prior_spoof=prior_spoof,
                    duration_s=wave.size / SAMPLE_RATE, window_starts_s=[s / SAMPLE_RATE for s in starts],
                    window_ends_s=[(s + w.size) / SAMPLE_RATE for s, w in zip(starts, windows, strict=True)],
                    window_scores=[float(v) for v in scores], source_rate=rate, channels=channels)


def detector_facts(scorer: Scorer, detector: str | Path) -> dict[str, str]:
    """The detector's facts as the page lists them, from its folder's settings (``-`` where not recorded)."""
    s, cfg = scorer.settings, scorer.cfg
    dev = s.get("dev", {})
    datasets = s.get("trained_on", {}).get("datasets", [])
    cal = scorer.calibration
    return {
        "detector": str(detector),
        "base model": s.get("base_model", "-"),
        "head, stage": f"{s.get('head', '-')}, stage {s.get('stage', '-')}",
        "training data": ", ".join(datasets) or "-",
        "dev EER": f"{100 * dev['eer']:.3f} %" if "eer" in dev else "-",
        "threshold (dev EER)": f"{cfg.threshold:.6g}" + ("" if "threshold" in dev else " (not recorded: default)"),
        "windows": f"{cfg.window / SAMPLE_RATE:g} s every {cfg.hop / SAMPLE_RATE:g} s, combined by {cfg.aggregation}",
        "calibration": f"{cal.method}, fitted on {cal.fitted_on}" if cal else "none: the scores are not probabilities",
        "licence": "; ".join(f"{name}: {licence}" for name, licence in licences_of(s)),
    }

